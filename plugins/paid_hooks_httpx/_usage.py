"""Provider usage JSON -> the canonical :class:`paid_hooks.Usage`, normalised once, here.

Canonical: ``input_tokens`` includes cache reads and writes, ``output_tokens`` includes
reasoning; the cache and reasoning fields are subsets. Per source:

* OpenAI Chat Completions / legacy Completions (and every OpenAI-compatible server:
  Mistral, Groq, OpenRouter, vLLM...): ``prompt_tokens`` and ``completion_tokens`` are
  already inclusive;
* OpenAI Responses: ``input_tokens`` / ``output_tokens`` already inclusive;
* OpenAI Embeddings: ``prompt_tokens`` only;
* Anthropic Messages: ``input_tokens`` EXCLUDES ``cache_read_input_tokens`` and
  ``cache_creation_input_tokens``, which are added here;
* Gemini: ``candidatesTokenCount`` EXCLUDES ``thoughtsTokenCount`` (added here) and
  ``toolUsePromptTokenCount`` is input beside ``promptTokenCount`` (added here), as
  genai-prices' own Google extractor does. With both cache reads and audio input,
  genai-prices needs ``cache_audio_read_tokens`` too (from ``cacheTokensDetails``; passed
  as a unit), else it refuses to price the call.

Every function takes the decoded ``usage`` mapping and returns ``None`` when it holds no
token counts. Malformed values (strings, negatives) are ignored, never raised.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import as_mapping

__all__ = [
    "anthropic_usage",
    "chat_usage",
    "embeddings_usage",
    "gemini_usage",
    "responses_usage",
]


def _int(value: Any) -> int | None:
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0 or value != int(value):
        return None
    return int(value)


def chat_usage(usage: Any) -> paid_hooks.Usage | None:
    """Chat Completions / Completions ``usage`` (inclusive; details are subsets)."""
    usage = as_mapping(usage)
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = as_mapping(usage.get("prompt_tokens_details"))
    completion_details = as_mapping(usage.get("completion_tokens_details"))
    return paid_hooks.Usage(
        input_tokens=prompt or 0,
        output_tokens=completion or 0,
        cache_read_tokens=_int(prompt_details.get("cached_tokens")),
        cache_write_tokens=_int(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
        input_audio_tokens=_int(prompt_details.get("audio_tokens")),
        output_audio_tokens=_int(completion_details.get("audio_tokens")),
    )


def responses_usage(usage: Any) -> paid_hooks.Usage | None:
    """Responses API ``usage`` (inclusive; details are subsets)."""
    usage = as_mapping(usage)
    inp = _int(usage.get("input_tokens"))
    out = _int(usage.get("output_tokens"))
    if inp is None and out is None:
        return None
    input_details = as_mapping(usage.get("input_tokens_details"))
    output_details = as_mapping(usage.get("output_tokens_details"))
    return paid_hooks.Usage(
        input_tokens=inp or 0,
        output_tokens=out or 0,
        cache_read_tokens=_int(input_details.get("cached_tokens")),
        cache_write_tokens=_int(input_details.get("cache_write_tokens")),
        reasoning_tokens=_int(output_details.get("reasoning_tokens")),
    )


def embeddings_usage(usage: Any) -> paid_hooks.Usage | None:
    """Embeddings ``usage``: ``prompt_tokens`` (``total_tokens`` when that is all there is)."""
    usage = as_mapping(usage)
    prompt = _int(usage.get("prompt_tokens"))
    if prompt is None:
        prompt = _int(usage.get("total_tokens"))
    if prompt is None:
        return None
    return paid_hooks.Usage(input_tokens=prompt, output_tokens=0)


def anthropic_usage(usage: Any) -> paid_hooks.Usage | None:
    """Anthropic Messages ``usage`` (exclusive input: the cache counts are added)."""
    usage = as_mapping(usage)
    inp = _int(usage.get("input_tokens"))
    out = _int(usage.get("output_tokens"))
    if inp is None and out is None:
        return None
    cache_read = _int(usage.get("cache_read_input_tokens"))
    cache_write = _int(usage.get("cache_creation_input_tokens"))
    split = as_mapping(usage.get("cache_creation"))
    output_details = as_mapping(usage.get("output_tokens_details"))
    searches = _int(as_mapping(usage.get("server_tool_use")).get("web_search_requests"))
    extra: dict[str, Any] = {"units": MappingProxyType({"web_searches": searches})} \
        if searches else {}
    return paid_hooks.Usage(
        input_tokens=(inp or 0) + (cache_read or 0) + (cache_write or 0),
        output_tokens=out or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_5m_tokens=_int(split.get("ephemeral_5m_input_tokens")),
        cache_write_1h_tokens=_int(split.get("ephemeral_1h_input_tokens")),
        reasoning_tokens=_int(output_details.get("thinking_tokens")),
        **extra,
    )


def _modality_sum(details: Any, *modalities: str) -> int | None:
    if not isinstance(details, list):
        return None
    total: int | None = None
    for item in details:
        item = as_mapping(item)
        if item.get("modality") in modalities:
            count = _int(item.get("tokenCount"))
            if count is not None:
                total = (total or 0) + count
    return total


def gemini_usage(metadata: Any) -> paid_hooks.Usage | None:
    """Gemini ``usageMetadata`` (thoughts and tool-use prompt tokens are added)."""
    metadata = as_mapping(metadata)
    prompt = _int(metadata.get("promptTokenCount"))
    candidates = _int(metadata.get("candidatesTokenCount"))
    thoughts = _int(metadata.get("thoughtsTokenCount"))
    tool_prompt = _int(metadata.get("toolUsePromptTokenCount"))
    if prompt is None and candidates is None and thoughts is None:
        return None
    prompt_details = metadata.get("promptTokensDetails")
    output_details = metadata.get("candidatesTokensDetails")
    cache_read = _int(metadata.get("cachedContentTokenCount"))
    input_audio = _modality_sum(prompt_details, "AUDIO")
    extra: dict[str, Any] = {}
    if cache_read is not None and input_audio is not None:
        # genai-prices refuses cache reads beside audio input unless told how many of the
        # cached tokens were audio (they are priced at the audio cache rate)
        cached_audio = _modality_sum(metadata.get("cacheTokensDetails"), "AUDIO") or 0
        extra["units"] = MappingProxyType({"cache_audio_read_tokens": cached_audio})
    return paid_hooks.Usage(
        input_tokens=(prompt or 0) + (tool_prompt or 0),
        output_tokens=(candidates or 0) + (thoughts or 0),
        cache_read_tokens=cache_read,
        reasoning_tokens=thoughts,
        input_audio_tokens=input_audio,
        input_image_tokens=_modality_sum(prompt_details, "IMAGE", "DOCUMENT"),
        output_audio_tokens=_modality_sum(output_details, "AUDIO"),
        output_image_tokens=_modality_sum(output_details, "IMAGE"),
        **extra,
    )
