"""LangChain callback payloads -> provider name, usage, served model and response id.

Pure functions on duck-typed LangChain objects (no LangChain import), one job each.

Token semantics: ``usage_metadata`` on a LangChain ``AIMessage`` is ALREADY inclusive for
every provider (each partner package normalises it: langchain-anthropic adds Anthropic's
cache reads and writes onto its exclusive ``input_tokens``), so it maps onto
:class:`paid_hooks.Usage` field by field. Adding Anthropic's cache on top again would
count it twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

import paid_hooks
from paid_hooks.plugin_kit import as_mapping, count

__all__ = [
    "is_cache_hit",
    "provider_name",
    "request_model",
    "response_details",
    "response_id",
    "served_model",
    "service_tier",
    "usage_from_message",
    "usage_from_token_usage",
]

_PROVIDERS: Mapping[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "google_genai": "gcp.gemini",
    "google_gemini": "gcp.gemini",
    "google_vertexai": "gcp.vertex_ai",
    "google_anthropic_vertex": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "aws": "aws.bedrock",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
    "xai": "x_ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "openrouter": "openrouter",
    "moonshot": "moonshot_ai",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
}
"""LangChain ``ls_provider`` -> OpenTelemetry ``gen_ai.provider.name``."""

_LC_ID_PREFIXES = ("lc_", "run-")
"""Ids LangChain generates itself (``lc_run--<run id>``), never a provider's."""

_TIERS = ("", "priority_", "flex_")
"""langchain-openai prefixes cache and reasoning details with a priority/flex tier."""

_CACHE_READ_KEYS = tuple(f"{tier}cache_read" for tier in _TIERS)
_CACHE_CREATION_KEYS = tuple(f"{tier}cache_creation" for tier in _TIERS)
_REASONING_KEYS = tuple(f"{tier}reasoning" for tier in _TIERS)


def _is_mapping(value: Any) -> TypeGuard[Mapping[str, Any]]:
    return type(value) is dict or isinstance(value, Mapping)


def _mapping(value: Any) -> Mapping[str, Any]:
    """:func:`~paid_hooks.plugin_kit.as_mapping`, without the ABC check for a dict."""
    return value if type(value) is dict else as_mapping(value)


def _count(value: Any) -> int | None:
    """:func:`~paid_hooks.plugin_kit.count`, without a call for ``None`` or an ``int``."""
    if value is None:
        return None
    return value if type(value) is int else count(value)


def _first_count(details: Mapping[str, Any], keys: tuple[str, ...]) -> int | None:
    """The first of ``keys`` (one per tier) with a count."""
    for key in keys:
        value = details.get(key)
        if value is not None:
            value = value if type(value) is int else count(value)
            if value is not None:
                return value
    return None


def provider_name(metadata: Any, invocation_params: Any, serialized: Any) -> str:
    """The OTel provider name: ``ls_provider`` first, then the model's ``_type``/class path.

    Tolerates ``metadata=None`` and any missing key; unknown providers pass through
    lower-cased, and nothing at all gives ``"unknown"``.
    """
    raw = _mapping(metadata).get("ls_provider")
    if not isinstance(raw, str) or not raw:
        kind = _mapping(invocation_params).get("_type")
        if isinstance(kind, str) and kind:
            raw = kind.lower()
            for suffix in ("-chat", "_chat", "-llm", "_llm"):
                raw = raw.removesuffix(suffix)
        else:
            path = _mapping(serialized).get("id")
            raw = path[-2] if isinstance(path, list) and len(path) >= 2 else None
    if not isinstance(raw, str) or not raw:
        return "unknown"
    key = raw.strip().lower()
    return _PROVIDERS.get(key, key)


def request_model(metadata: Any, invocation_params: Any) -> str | None:
    """The requested model: the invocation's ``model`` (or alias keys), else ``ls_model_name``."""
    params = _mapping(invocation_params)
    for key in ("model", "model_name", "model_id", "deployment_name"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    value = _mapping(metadata).get("ls_model_name")
    return value if isinstance(value, str) and value else None


def is_cache_hit(message: Any) -> bool:
    """True for a generation served from a LangChain LLM cache (no provider call made).

    langchain-core marks cache hits by setting ``usage_metadata["total_cost"] = 0`` on the
    cached message (``BaseChatModel._convert_cached_generations``); no provider adds it.
    """
    usage = getattr(message, "usage_metadata", None)
    return _is_mapping(usage) and "total_cost" in usage and usage["total_cost"] == 0


def usage_from_message(message: Any) -> paid_hooks.Usage | None:
    """``message.usage_metadata`` (inclusive semantics) as a Usage, or None if absent."""
    usage = getattr(message, "usage_metadata", None)
    if not _is_mapping(usage):
        return None
    input_tokens = _count(usage.get("input_tokens"))
    output_tokens = _count(usage.get("output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    inputs = usage.get("input_token_details")
    cache_read = cache_write = write_5m = write_1h = input_audio = None
    if inputs and _is_mapping(inputs):
        cache_read = _first_count(inputs, _CACHE_READ_KEYS)
        cache_write = _first_count(inputs, _CACHE_CREATION_KEYS)
        write_5m = _count(inputs.get("ephemeral_5m_input_tokens"))
        write_1h = _count(inputs.get("ephemeral_1h_input_tokens"))
        input_audio = _count(inputs.get("audio"))
        split = (write_5m or 0) + (write_1h or 0)
        if split > 0:
            # langchain-anthropic zeroes the generic key when it copies the TTL split.
            cache_write = max(cache_write or 0, split)
    outputs = usage.get("output_token_details")
    reasoning = output_audio = None
    if outputs and _is_mapping(outputs):
        reasoning = _first_count(outputs, _REASONING_KEYS)
        output_audio = _count(outputs.get("audio"))
    return paid_hooks.Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=reasoning,
        input_audio_tokens=input_audio,
        output_audio_tokens=output_audio,
    )


def usage_from_token_usage(llm_output: Any) -> paid_hooks.Usage | None:
    """The fallback: ``llm_output["token_usage"]`` in OpenAI's (inclusive) key names."""
    raw = _mapping(_mapping(llm_output).get("token_usage"))
    prompt = count(raw.get("prompt_tokens"))
    completion = count(raw.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    prompt_details = _mapping(raw.get("prompt_tokens_details"))
    completion_details = _mapping(raw.get("completion_tokens_details"))
    return paid_hooks.Usage(
        input_tokens=prompt or 0,
        output_tokens=completion or 0,
        cache_read_tokens=count(prompt_details.get("cached_tokens")),
        cache_write_tokens=count(prompt_details.get("cache_write_tokens")),
        reasoning_tokens=count(completion_details.get("reasoning_tokens")),
        input_audio_tokens=count(prompt_details.get("audio_tokens")),
        output_audio_tokens=count(completion_details.get("audio_tokens")),
    )


def response_id(message: Any, llm_output: Any) -> str | None:
    """The PROVIDER's response id (``chatcmpl-...``, ``msg_...``), never LangChain's run id.

    Non-streaming calls carry it in ``response_metadata["id"]`` (OpenAI, Anthropic) and
    ``llm_output["id"]``; ``message.id`` is LangChain's ``lc_run--...`` unless the partner
    package sets the provider's. Streamed calls do not carry it at all (langchain-openai
    1.7 and langchain-anthropic 1.7 drop it), so this returns None for them.
    """
    return _response_id(_mapping(getattr(message, "response_metadata", None)),
                        _mapping(llm_output), message)


def served_model(message: Any, llm_output: Any, generation_info: Any) -> str | None:
    """The model that answered: ``response_metadata``, then ``llm_output``, then generation info."""
    return _served_model(_mapping(getattr(message, "response_metadata", None)),
                         _mapping(llm_output), generation_info)


def service_tier(message: Any, llm_output: Any) -> str | None:
    """The service tier the provider reported (OpenAI ``default``/``flex``/``priority``)."""
    return _service_tier(_mapping(getattr(message, "response_metadata", None)),
                         _mapping(llm_output))


def response_details(message: Any, llm_output: Any,
                     generation_info: Any) -> tuple[str | None, str | None, str | None]:
    """(:func:`served_model`, :func:`response_id`, :func:`service_tier`), read in one go."""
    metadata = _mapping(getattr(message, "response_metadata", None))
    output = _mapping(llm_output)
    return (_served_model(metadata, output, generation_info),
            _response_id(metadata, output, message), _service_tier(metadata, output))


def _response_id(metadata: Mapping[str, Any], llm_output: Mapping[str, Any],
                 message: Any) -> str | None:
    for value in (metadata.get("id"), llm_output.get("id"), getattr(message, "id", None)):
        if isinstance(value, str) and value and not value.startswith(_LC_ID_PREFIXES):
            return value
    return None


def _served_model(metadata: Mapping[str, Any], llm_output: Mapping[str, Any],
                  generation_info: Any) -> str | None:
    for source in (metadata, llm_output, generation_info):
        if not source or not _is_mapping(source):
            continue
        for key in ("model_name", "model"):
            value = source.get(key)
            if isinstance(value, str) and value:
                return value
    return None


def _service_tier(metadata: Mapping[str, Any], llm_output: Mapping[str, Any]) -> str | None:
    for source in (metadata, llm_output):
        value = source.get("service_tier")
        if isinstance(value, str) and value:
            return value
    return None
