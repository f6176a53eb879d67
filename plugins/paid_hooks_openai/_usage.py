"""OpenAI usage objects -> the canonical :class:`paid_hooks.Usage`.

OpenAI's token counts are already inclusive (``prompt_tokens`` / ``input_tokens`` include
cached tokens, ``completion_tokens`` / ``output_tokens`` include reasoning tokens), so they
are copied as they are and the details become the subset fields. Every reader accepts the
SDK's pydantic objects or plain dicts, returns ``None`` when nothing usable was reported,
and never invents a zero for a count that was not reported.
"""

from __future__ import annotations

import operator
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import declares_fields, field, field_reader

PROVIDER = "openai"

__all__ = [
    "PROVIDER",
    "chat_usage",
    "embeddings_usage",
    "images_usage",
    "responses_usage",
    "speech_usage",
    "transcription_usage",
]


def _int(value: Any) -> int | None:
    """An integer count, or ``None`` for anything that is not one (bools excluded)."""
    if type(value) is int:
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


_CHAT_USAGE = field_reader("prompt_tokens", "completion_tokens", "prompt_tokens_details",
                          "completion_tokens_details")
_PROMPT_DETAILS = field_reader("cached_tokens", "cache_write_tokens", "audio_tokens")
_COMPLETION_DETAILS = field_reader("reasoning_tokens", "audio_tokens")


_CHAT_USAGE_DIRECT = operator.attrgetter(
    "prompt_tokens", "completion_tokens", "prompt_tokens_details.cached_tokens",
    "prompt_tokens_details.cache_write_tokens", "prompt_tokens_details.audio_tokens",
    "completion_tokens_details.reasoning_tokens", "completion_tokens_details.audio_tokens")


def _direct_usage_classes() -> frozenset[type]:
    """``CompletionUsage`` when the installed SDK declares every field read here (then one
    ``attrgetter`` call reads them all)."""
    try:
        from openai.types import CompletionUsage
        from openai.types.completion_usage import CompletionTokensDetails, PromptTokensDetails
    except ImportError:
        return frozenset()
    if (declares_fields(CompletionUsage, "prompt_tokens", "completion_tokens",
                        "prompt_tokens_details", "completion_tokens_details")
            and declares_fields(PromptTokensDetails, "cached_tokens", "cache_write_tokens",
                                "audio_tokens")
            and declares_fields(CompletionTokensDetails, "reasoning_tokens", "audio_tokens")):
        return frozenset({CompletionUsage})
    return frozenset()


_DIRECT_USAGE = _direct_usage_classes()
_NO_UNITS = paid_hooks.Usage().units
"""The default (empty) ``units``, passed explicitly: spares ``Usage`` its default factory call."""


def chat_usage(usage: Any) -> paid_hooks.Usage | None:
    """Chat Completions ``usage`` (``prompt_tokens`` includes cached tokens)."""
    if usage is None:
        return None
    if type(usage) in _DIRECT_USAGE:
        try:
            (prompt, completion, cached, cache_write, input_audio, reasoning,
             output_audio) = _CHAT_USAGE_DIRECT(usage)
        except AttributeError:  # details missing (None): read field by field below
            pass
        else:
            if type(prompt) is int and type(completion) is int:
                # Every count is an int or None as a rule: ``_int`` only for anything else.
                return paid_hooks.Usage(
                    input_tokens=prompt,
                    output_tokens=completion,
                    cache_read_tokens=(cached if cached is None or type(cached) is int
                                       else _int(cached)),
                    cache_write_tokens=(cache_write if cache_write is None
                                        or type(cache_write) is int else _int(cache_write)),
                    reasoning_tokens=(reasoning if reasoning is None or type(reasoning) is int
                                      else _int(reasoning)),
                    input_audio_tokens=(input_audio if input_audio is None
                                        or type(input_audio) is int else _int(input_audio)),
                    output_audio_tokens=(output_audio if output_audio is None
                                         or type(output_audio) is int else _int(output_audio)),
                    units=_NO_UNITS,
                )
    prompt, completion, prompt_details, completion_details = _CHAT_USAGE(usage)
    prompt = _int(prompt)
    completion = _int(completion)
    if prompt is None and completion is None:
        return None
    cached, cache_write, input_audio = _PROMPT_DETAILS(prompt_details)
    reasoning, output_audio = _COMPLETION_DETAILS(completion_details)
    return paid_hooks.Usage(
        input_tokens=prompt or 0,
        output_tokens=completion or 0,
        cache_read_tokens=_int(cached),
        cache_write_tokens=_int(cache_write),
        reasoning_tokens=_int(reasoning),
        input_audio_tokens=_int(input_audio),
        output_audio_tokens=_int(output_audio),
    )


def responses_usage(usage: Any) -> paid_hooks.Usage | None:
    """Responses API ``usage`` (``input_tokens`` includes cached tokens)."""
    input_tokens = _int(field(usage, "input_tokens"))
    output_tokens = _int(field(usage, "output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    input_details = field(usage, "input_tokens_details")
    output_details = field(usage, "output_tokens_details")
    return paid_hooks.Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        cache_read_tokens=_int(field(input_details, "cached_tokens")),
        cache_write_tokens=_int(field(input_details, "cache_write_tokens")),
        reasoning_tokens=_int(field(output_details, "reasoning_tokens")),
    )


def embeddings_usage(usage: Any) -> paid_hooks.Usage | None:
    """Embeddings ``usage``: ``prompt_tokens`` is all there is (no output)."""
    prompt = _int(field(usage, "prompt_tokens"))
    if prompt is None:
        return None
    return paid_hooks.Usage(input_tokens=prompt, output_tokens=0)


def images_usage(usage: Any) -> paid_hooks.Usage | None:
    """GPT image models' ``usage``: totals plus the image-token parts of input and output."""
    input_tokens = _int(field(usage, "input_tokens"))
    output_tokens = _int(field(usage, "output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    return paid_hooks.Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        input_image_tokens=_int(field(field(usage, "input_tokens_details"), "image_tokens")),
        output_image_tokens=_int(field(field(usage, "output_tokens_details"), "image_tokens")),
    )


def image_units(count: int) -> paid_hooks.Usage:
    """Images produced by a model that reports no tokens (DALL-E): a plugin-defined unit.

    No price source knows ``images``, so the call is recorded ``unpriced`` with the reason
    ``no_price_for_units:images`` (unless a price override prices it), never as zero.
    """
    return paid_hooks.Usage(units=MappingProxyType({"images": count}))


def transcription_usage(usage: Any) -> paid_hooks.Usage | None:
    """Transcription ``usage``: ``type: "tokens"`` (GPT-4o models) or ``"duration"`` (whisper).

    Duration usage becomes the genai-prices unit ``audio_seconds`` (an exact decimal).
    """
    kind = field(usage, "type")
    if kind == "duration" or (kind is None and field(usage, "seconds") is not None):
        seconds = field(usage, "seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            return None
        try:
            amount = Decimal(str(seconds))
        except InvalidOperation:
            return None
        return paid_hooks.Usage(units=MappingProxyType({"audio_seconds": amount}))
    input_tokens = _int(field(usage, "input_tokens"))
    output_tokens = _int(field(usage, "output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    details = field(usage, "input_token_details")
    return paid_hooks.Usage(
        input_tokens=input_tokens or 0,
        output_tokens=output_tokens or 0,
        input_audio_tokens=_int(field(details, "audio_tokens")),
    )


def speech_usage(usage: Any) -> paid_hooks.Usage | None:
    """``speech.audio.done`` usage of a text-to-speech SSE stream (text in, audio out)."""
    input_tokens = _int(field(usage, "input_tokens"))
    output_tokens = _int(field(usage, "output_tokens"))
    if input_tokens is None and output_tokens is None:
        return None
    return paid_hooks.Usage(input_tokens=input_tokens or 0, output_tokens=output_tokens or 0)


def speech_characters(text: Any) -> paid_hooks.Usage | None:
    """Character-billed TTS (``tts-1``, ``tts-1-hd``): the genai-prices unit ``input_characters``.

    OpenAI returns no usage for speech; these models are billed per input character, so
    the count is taken from the request (never the text itself) and marked ``estimated``
    because it is counted here, in Unicode code points, not reported by the provider.
    """
    if not isinstance(text, str):
        return None
    return paid_hooks.Usage(units=MappingProxyType({"input_characters": len(text)}),
                            estimated=True)
