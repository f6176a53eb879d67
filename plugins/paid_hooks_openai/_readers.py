"""What one finished OpenAI call reports: a :class:`Reading` per result or stream event.

Readers take the SDK's return value (or one stream item) and the request's keyword
arguments, and return what the ledger needs: usage, served model, response id, service
tier, or the reason usage is unknown. They read attributes only; they never raise for an
unexpected shape (the caller still guards them) and never look at prompt or output text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import as_str, field, field_reader
from paid_hooks_openai import _usage

__all__ = [
    "Reading",
    "read_chat",
    "read_embeddings",
    "read_images",
    "read_responses",
    "read_speech",
    "read_transcription",
]


@dataclass(slots=True)
class Reading:
    """The billing facts of one response. ``usage is None`` needs ``unknown_reason``."""

    usage: paid_hooks.Usage | None
    response_model: str | None = None
    response_id: str | None = None
    service_tier: str | None = None
    unknown_reason: str | None = None
    failed: str | None = None
    """Set when the provider reported the call as failed (``response.failed``)."""


Reader = Callable[[Any, Mapping[str, Any]], Reading]


_CHAT = field_reader("usage", "model", "id", "service_tier")


def read_chat(response: Any, kwargs: Mapping[str, Any]) -> Reading:
    """``ChatCompletion`` / ``ParsedChatCompletion`` (or one streamed chunk)."""
    usage, model, response_id, service_tier = _CHAT(response)
    return Reading(_usage.chat_usage(usage), as_str(model), as_str(response_id),
                   as_str(service_tier), "not_reported")


def read_responses(response: Any, kwargs: Mapping[str, Any]) -> Reading:
    """A Responses API ``Response`` / ``ParsedResponse``.

    A background response (``status`` queued or in progress) carries no usage yet: it is
    billed when it finishes, which this call does not see (reason ``background_response``).
    """
    status = field(response, "status")
    usage = _usage.responses_usage(field(response, "usage"))
    reason = ("background_response" if status in ("queued", "in_progress") else "not_reported")
    return Reading(
        usage=usage,
        response_model=as_str(field(response, "model")),
        response_id=as_str(field(response, "id")),
        service_tier=as_str(field(response, "service_tier")),
        unknown_reason=reason,
        failed="response.failed" if status == "failed" else None,
    )


def read_embeddings(response: Any, kwargs: Mapping[str, Any]) -> Reading:
    """``CreateEmbeddingResponse`` (no response id exists for embeddings)."""
    return Reading(usage=_usage.embeddings_usage(field(response, "usage")),
                   response_model=as_str(field(response, "model")),
                   unknown_reason="not_reported")


def read_images(response: Any, kwargs: Mapping[str, Any]) -> Reading:
    """``ImagesResponse``: token usage for GPT image models, else the count of images.

    The response names no model, so the requested one is priced. DALL-E reports no usage:
    the call is recorded with ``units={"images": n}`` (``n`` images returned), which no
    price source knows, so it shows as ``unpriced`` with its reason, never as zero.
    """
    usage = _usage.images_usage(field(response, "usage"))
    if usage is None:
        data = field(response, "data")
        count = len(data) if isinstance(data, list) else _requested_images(kwargs)
        usage = _usage.image_units(count)
    return Reading(usage=usage)


def _requested_images(kwargs: Mapping[str, Any]) -> int:
    n = kwargs.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1


def read_transcription(response: Any, kwargs: Mapping[str, Any]) -> Reading:
    """``Transcription`` / ``TranscriptionVerbose`` / ... or a plain ``str``.

    The ``text``, ``srt`` and ``vtt`` formats return a bare string without usage (reason
    ``not_reported_for_response_format``).
    """
    if isinstance(response, str):
        return Reading(usage=None, unknown_reason="not_reported_for_response_format")
    return Reading(usage=_usage.transcription_usage(field(response, "usage")),
                   unknown_reason="not_reported")


_CHARACTER_BILLED_TTS = ("tts-1", "tts-1-hd")


def read_speech(response: Any, kwargs: Mapping[str, Any]) -> Reading:
    """Text to speech returns audio bytes and no usage object.

    * ``stream_format="sse"``: the ``speech.audio.done`` event in the (already read) body
      carries token usage, which is used;
    * ``tts-1`` / ``tts-1-hd``: billed per input character, counted from the request
      (``units={"input_characters": n}``, marked estimated);
    * anything else (``gpt-4o-mini-tts`` returning plain audio): ``usage_unknown`` with the
      reason ``speech_usage_not_reported``.
    """
    if kwargs.get("stream_format") == "sse":
        usage = _speech_sse_usage(response)
        if usage is not None:
            return Reading(usage=usage)
    model = kwargs.get("model")
    if isinstance(model, str) and model.split(":")[0] in _CHARACTER_BILLED_TTS:
        usage = _usage.speech_characters(kwargs.get("input"))
        if usage is not None:
            return Reading(usage=usage)
    return Reading(usage=None, unknown_reason="speech_usage_not_reported")


def _speech_sse_usage(response: Any) -> paid_hooks.Usage | None:
    """The usage of the last ``speech.audio.done`` event of an SSE speech body, if read."""
    try:
        body = response.response.content
    except Exception:  # not a read body (streamed to a file by the caller, or no body)
        return None
    if not isinstance(body, bytes):
        return None
    marker = body.rfind(b'"speech.audio.done"')
    if marker < 0:
        return None
    start = body.rfind(b"data:", 0, marker)
    end = body.find(b"\n", marker)
    try:
        event = json.loads(body[start + 5:end if end >= 0 else len(body)])
    except ValueError:
        return None
    return _usage.speech_usage(field(event, "usage"))
