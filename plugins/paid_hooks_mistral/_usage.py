"""Mistral usage objects -> the canonical :class:`paid_hooks.Usage`.

Mistral's counts are already inclusive: ``prompt_tokens`` includes the cached tokens
(``prompt_tokens_details.cached_tokens``) and ``completion_tokens`` includes reasoning
(``completion_tokens_details.reasoning_tokens``). The SDK's ``UsageInfo`` keeps those
detail objects as undeclared extra fields (plain dicts), so they are read generically.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import number_count

__all__ = ["PROVIDER", "chat_usage", "get", "ocr_usage"]

PROVIDER = "mistral_ai"
"""OpenTelemetry ``gen_ai.provider.name`` of Mistral AI."""


def get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; ``None`` when absent (also for the SDK's UNSET)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        value = obj.get(name)
    else:
        value = getattr(obj, name, None)
        if value is None:
            extra = getattr(obj, "__pydantic_extra__", None)
            if isinstance(extra, Mapping):
                value = extra.get(name)
    return None if type(value).__name__ == "Unset" else value


def _cached_tokens(usage: Any) -> int | None:
    for details in ("prompt_tokens_details", "prompt_token_details"):
        cached = number_count(get(get(usage, details), "cached_tokens"))
        if cached is not None:
            return cached
    return number_count(get(usage, "num_cached_tokens"))


def chat_usage(usage: Any) -> paid_hooks.Usage | None:
    """Chat completions / embeddings ``usage`` (``UsageInfo``); ``None`` when absent."""
    if usage is None:
        return None
    prompt = number_count(get(usage, "prompt_tokens"))
    completion = number_count(get(usage, "completion_tokens"))
    if prompt is None and completion is None:
        return None
    return paid_hooks.Usage(
        input_tokens=prompt or 0,
        output_tokens=completion or 0,
        cache_read_tokens=_cached_tokens(usage),
        reasoning_tokens=number_count(get(get(usage, "completion_tokens_details"),
                                         "reasoning_tokens")),
    )


def ocr_usage(usage_info: Any, *, annotated: bool) -> paid_hooks.Usage | None:
    """OCR ``usage_info``: pages processed, priced per page (``input_document_pages``).

    With a document or bbox annotation format the pages are also billed as
    ``input_annotated_document_pages`` (genai-prices' ``ocr_annotated`` flavour).
    """
    pages = number_count(get(usage_info, "pages_processed"))
    if pages is None:
        return None
    units: dict[str, int] = {"input_document_pages": pages}
    if annotated:
        units["input_annotated_document_pages"] = pages
    return paid_hooks.Usage(units=MappingProxyType(units))
