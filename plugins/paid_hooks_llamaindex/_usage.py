"""What a LlamaIndex response tells us: provider, usage, served model, response id.

Pure functions over the objects LlamaIndex hands to its events; nothing here imports
LlamaIndex or a provider SDK. Usage is read from ``response.raw`` (the provider's own
response object or dict), never from ``response.additional_kwargs``, which holds only
three counts and no cache or reasoning detail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import count

__all__ = [
    "OPENAI_STREAM_USAGE_HINT",
    "estimate_tokens",
    "get",
    "is_local",
    "local_or_provider",
    "provider_for",
    "usage_from_raw",
]

OPENAI_STREAM_USAGE_HINT = (
    "stream_usage_not_requested: use PaidLlamaIndexOpenAI or "
    "additional_kwargs={'stream_options': {'include_usage': True}}"
)
"""``usage_unknown`` reason of an OpenAI-family stream that was never asked for usage."""

# (substring of the lower-cased LlamaIndex class name, gen_ai.provider.name); first match wins.
_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("azure", "azure.ai.openai"),
    ("openrouter", "openrouter"),
    ("bedrock", "aws.bedrock"),
    ("vertex", "gcp.vertex_ai"),
    ("anthropic", "anthropic"),
    ("gemini", "gcp.gemini"),
    ("google", "gcp.gemini"),
    ("mistral", "mistral_ai"),
    ("groq", "groq"),
    ("deepseek", "deepseek"),
    ("cohere", "cohere"),
    ("perplexity", "perplexity"),
    ("xai", "x_ai"),
    ("openai", "openai"),
)

OPENAI_FAMILY = frozenset({"openai", "azure.ai.openai"})

# Integrations that run the model in-process or on the user's own machine: no provider
# bills them, so they are not recorded (they would only add unpriced rows).
_LOCAL = ("mock", "huggingfaceembedding", "huggingfacellm", "fastembed", "llamacpp",
          "ollama", "instructorembedding", "clipembedding")


_CLASSES: dict[str, tuple[bool, str]] = {}
"""Class name -> (is local, provider): read once per integration class."""
_CLASSES_LIMIT = 1024


def _class_info(model_dict: Any) -> tuple[bool, str]:
    name = str(get(model_dict, "class_name") or "")
    info = _CLASSES.get(name)
    if info is None:
        lowered = name.lower().replace("_", "").replace("-", "")
        local = any(needle in lowered for needle in _LOCAL)
        provider = next((provider for needle, provider in _PROVIDERS if needle in lowered),
                        name or "unknown")
        if len(_CLASSES) >= _CLASSES_LIMIT:
            _CLASSES.clear()
        info = _CLASSES[name] = (local, provider)
    return info


def is_local(model_dict: Any) -> bool:
    """True for LlamaIndex classes that call no paid provider (``MockLLM``, ``Ollama``...)."""
    return _class_info(model_dict)[0]


def provider_for(model_dict: Any) -> str:
    """``gen_ai.provider.name`` inferred from ``model_dict["class_name"]``.

    LlamaIndex events carry no provider and no base URL, only the integration's class
    name (``openai_llm``, ``azure_openai_llm``, ``Anthropic_LLM``, ``OpenAIEmbedding``...).
    An unknown class name is returned as is, so the row still says where it came from
    and pricing falls back to matching the model name alone.
    """
    return _class_info(model_dict)[1]


def local_or_provider(model_dict: Any) -> str | None:
    """``None`` when :func:`is_local`, else :func:`provider_for` (one look-up)."""
    local, provider = _class_info(model_dict)
    return None if local else provider


def request_model(model_dict: Any) -> str | None:
    value = get(model_dict, "model_name") or get(model_dict, "model")
    return str(value) if value else None


def get(obj: Any, name: str) -> Any:
    """``obj.name`` or ``obj[name]``; ``None`` when absent (never raises)."""
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:
        return None


def usage_from_raw(raw: Any) -> paid_hooks.Usage | None:
    """The canonical usage of a provider response (``response.raw``), or ``None``.

    Understands OpenAI Chat Completions / Completions (``prompt_tokens`` inclusive of
    cached tokens), OpenAI Responses (``input_tokens`` with ``input_tokens_details``)
    and Anthropic Messages (``input_tokens`` EXCLUSIVE of cache reads and writes, which
    are added here). Anything else gives ``None``.
    """
    usage = get(raw, "usage")
    if usage is None:
        return None
    if get(usage, "prompt_tokens") is not None or get(usage, "completion_tokens") is not None:
        return _openai_chat(usage)
    if get(usage, "input_tokens") is None and get(usage, "output_tokens") is None:
        return None
    if (get(usage, "cache_read_input_tokens") is not None
            or get(usage, "cache_creation_input_tokens") is not None
            or get(usage, "cache_creation") is not None):
        return _anthropic(usage)
    return _openai_responses(usage)


def _openai_chat(usage: Any) -> paid_hooks.Usage:
    prompt = get(usage, "prompt_tokens_details")
    completion = get(usage, "completion_tokens_details")
    return paid_hooks.Usage(
        input_tokens=count(get(usage, "prompt_tokens")) or 0,
        output_tokens=count(get(usage, "completion_tokens")) or 0,
        cache_read_tokens=count(get(prompt, "cached_tokens")),
        cache_write_tokens=count(get(prompt, "cache_write_tokens")),
        reasoning_tokens=count(get(completion, "reasoning_tokens")),
        input_audio_tokens=count(get(prompt, "audio_tokens")),
        output_audio_tokens=count(get(completion, "audio_tokens")),
    )


def _openai_responses(usage: Any) -> paid_hooks.Usage:
    inputs = get(usage, "input_tokens_details")
    outputs = get(usage, "output_tokens_details")
    return paid_hooks.Usage(
        input_tokens=count(get(usage, "input_tokens")) or 0,
        output_tokens=count(get(usage, "output_tokens")) or 0,
        cache_read_tokens=count(get(inputs, "cached_tokens")),
        cache_write_tokens=count(get(inputs, "cache_write_tokens")),
        reasoning_tokens=count(get(outputs, "reasoning_tokens")),
    )


def _anthropic(usage: Any) -> paid_hooks.Usage:
    uncached = count(get(usage, "input_tokens")) or 0
    read = count(get(usage, "cache_read_input_tokens"))
    write = count(get(usage, "cache_creation_input_tokens"))
    split = get(usage, "cache_creation")
    write_5m = count(get(split, "ephemeral_5m_input_tokens"))
    write_1h = count(get(split, "ephemeral_1h_input_tokens"))
    return paid_hooks.Usage(
        input_tokens=uncached + (read or 0) + (write or 0),
        output_tokens=count(get(usage, "output_tokens")) or 0,
        cache_read_tokens=read,
        cache_write_tokens=write,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
    )


def _default_tokenizer() -> Callable[[str], Any] | None:
    try:
        from llama_index.core.utils import get_tokenizer

        tokenizer: Callable[[str], Any] = get_tokenizer()
        return tokenizer
    except Exception:
        return None


def estimate_tokens(texts: Iterable[Any],
                    tokenizer: Callable[[str], Any] | None = None) -> int:
    """Input tokens of embedded texts, estimated (the provider's count never reached us).

    Uses LlamaIndex's global tokenizer (tiktoken ``cl100k_base``, the encoding of
    OpenAI's embedding models, bundled with llama-index-core so it works offline);
    without one, about four characters a token.
    """
    tokenize = tokenizer or _default_tokenizer()
    total = 0
    for text in texts:
        value = text if isinstance(text, str) else str(text)
        if tokenize is not None:
            try:
                total += len(tokenize(value))
                continue
            except Exception:
                tokenize = None
        total += (len(value) + 3) // 4
    return total
