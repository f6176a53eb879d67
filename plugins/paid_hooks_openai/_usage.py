"""OpenAI usage objects -> the canonical :class:`paid_hooks.Usage` (already inclusive)."""

from __future__ import annotations

from typing import Any

import paid_hooks

PROVIDER = "openai"


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def chat_usage(usage: Any) -> paid_hooks.Usage | None:
    """Chat Completions ``usage`` (``prompt_tokens`` includes cached tokens)."""
    if usage is None:
        return None
    prompt = _get(usage, "prompt_tokens")
    completion = _get(usage, "completion_tokens")
    if prompt is None and completion is None:
        return None
    prompt_details = _get(usage, "prompt_tokens_details")
    completion_details = _get(usage, "completion_tokens_details")
    return paid_hooks.Usage(
        input_tokens=int(prompt or 0),
        output_tokens=int(completion or 0),
        cache_read_tokens=_get(prompt_details, "cached_tokens"),
        cache_write_tokens=_get(prompt_details, "cache_write_tokens"),
        reasoning_tokens=_get(completion_details, "reasoning_tokens"),
        input_audio_tokens=_get(prompt_details, "audio_tokens"),
        output_audio_tokens=_get(completion_details, "audio_tokens"),
    )
