"""Gemini ``usageMetadata`` -> the canonical :class:`paid_hooks.Usage`.

Gemini's own counts are NOT in the canonical form; this is the one place they are
normalised:

* ``prompt_token_count`` includes ``cached_content_token_count`` (a cache-read subset);
* ``candidates_token_count`` EXCLUDES ``thoughts_token_count``: output is
  ``candidates + thoughts`` and reasoning is ``thoughts``;
* ``tool_use_prompt_token_count`` (tool results fed back to the model) is input beside
  the prompt: input is ``prompt + tool_use_prompt``;
* the per-modality details give the audio and image subsets (``IMAGE`` and ``DOCUMENT``
  count as image, as genai-prices does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import field

__all__ = [
    "PROVIDER",
    "VERTEX_PROVIDER",
    "embed_usage",
    "gemini_usage",
    "model_name",
]

PROVIDER = "gcp.gemini"
"""``gen_ai.provider.name`` of the Gemini Developer API (AI Studio)."""
VERTEX_PROVIDER = "gcp.vertex_ai"
"""``gen_ai.provider.name`` when the client talks to Vertex AI."""


def _count(obj: Any, name: str) -> int | None:
    value = field(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def model_name(model: Any) -> str | None:
    """``models/gemini-2.5-flash`` or a Vertex resource name -> ``gemini-2.5-flash``."""
    if not isinstance(model, str) or not model:
        return None
    if model.startswith("models/") or "/models/" in model:
        return model.rsplit("models/", 1)[-1] or None
    return model


def _modality_counts(details: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    if not isinstance(details, Iterable) or isinstance(details, str | bytes | Mapping):
        return counts
    for item in details:
        modality = field(item, "modality")
        modality = field(modality, "value") or modality
        tokens = _count(item, "token_count")
        if tokens is None:
            tokens = _count(item, "tokenCount")
        if isinstance(modality, str) and tokens is not None:
            counts[modality.upper()] = counts.get(modality.upper(), 0) + tokens
    return counts


def _subset(counts: dict[str, int], *modalities: str) -> int | None:
    total = sum(counts.get(m, 0) for m in modalities)
    return total or None


def gemini_usage(metadata: Any) -> paid_hooks.Usage | None:
    """A ``GenerateContentResponseUsageMetadata`` (or its dict) in canonical form."""
    if metadata is None:
        return None
    prompt = _count(metadata, "prompt_token_count")
    candidates = _count(metadata, "candidates_token_count")
    thoughts = _count(metadata, "thoughts_token_count")
    tool_use = _count(metadata, "tool_use_prompt_token_count")
    if prompt is None and candidates is None and thoughts is None and tool_use is None:
        return None
    prompt_details = _modality_counts(field(metadata, "prompt_tokens_details"))
    output_details = _modality_counts(field(metadata, "candidates_tokens_details"))
    return paid_hooks.Usage(
        input_tokens=(prompt or 0) + (tool_use or 0),
        output_tokens=(candidates or 0) + (thoughts or 0),
        cache_read_tokens=_count(metadata, "cached_content_token_count"),
        reasoning_tokens=thoughts,
        input_audio_tokens=_subset(prompt_details, "AUDIO"),
        input_image_tokens=_subset(prompt_details, "IMAGE", "DOCUMENT"),
        output_audio_tokens=_subset(output_details, "AUDIO"),
        output_image_tokens=_subset(output_details, "IMAGE"),
    )


def embed_usage(response: Any) -> paid_hooks.Usage | None:
    """``EmbedContentResponse``: ``usage_metadata.prompt_token_count`` (Gemini API), else
    the per-embedding ``statistics.token_count`` (Vertex AI)."""
    prompt = _count(field(response, "usage_metadata"), "prompt_token_count")
    if prompt is None:
        counts = [_count(field(e, "statistics"), "token_count")
                  for e in field(response, "embeddings") or ()]
        if not counts or any(c is None for c in counts):
            return None
        prompt = sum(c for c in counts if c is not None)
    return paid_hooks.Usage(input_tokens=prompt, output_tokens=0)
