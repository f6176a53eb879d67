"""Incremental readers of a (decoded) response body copy: JSON bodies and SSE streams.

A reader is fed the decoded bytes piece by piece as the caller reads them, and keeps only
what it needs: an SSE reader holds at most the event being received; a JSON reader holds
the body up to :data:`FULL_JSON_LIMIT` bytes and beyond that only its head and tail, from
which the top-level ``usage``/``model``/``id`` keys are recovered. Nothing here raises:
a malformed event is skipped.

Each reader fills a :class:`Result`; ``complete`` means the provider's final usage was
seen, ``ended`` that the provider's end-of-response marker was seen (a parsed JSON body,
``data: [DONE]``, ``message_stop``, ``response.completed``, a Gemini ``finishReason``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import as_mapping, as_str
from paid_hooks_httpx._routes import (
    API_ANTHROPIC_MESSAGES,
    API_GEMINI,
    API_GEMINI_EMBED,
    API_OPENAI_CHAT,
    API_OPENAI_COMPLETIONS,
    API_OPENAI_EMBEDDINGS,
    API_OPENAI_RESPONSES,
)
from paid_hooks_httpx._usage import (
    anthropic_usage,
    chat_usage,
    embeddings_usage,
    gemini_usage,
    responses_usage,
)

__all__ = ["FULL_JSON_LIMIT", "JsonReader", "Result", "SseReader", "make_reader"]

FULL_JSON_LIMIT = 1 << 20
"""JSON bodies up to 1 MiB are parsed whole; larger ones (embeddings) are scanned."""
_WINDOW = 64 * 1024
_MAX_EVENT = 16 << 20
"""An SSE event larger than this is skipped (its usage, if any, is lost)."""


@dataclass
class Result:
    """What was learnt from a response body so far."""

    usage: paid_hooks.Usage | None = None
    response_model: str | None = None
    response_id: str | None = None
    service_tier: str | None = None
    complete: bool = False
    ended: bool = False
    error: str | None = None


# -- whole JSON bodies ---------------------------------------------------------------------


def _json_openai(obj: Any, result: Result, usage_of: Callable[[Any], Any]) -> None:
    obj = as_mapping(obj)
    result.response_model = as_str(obj.get("model"))
    result.response_id = as_str(obj.get("id"))
    result.service_tier = as_str(obj.get("service_tier"))
    result.usage = usage_of(obj.get("usage"))


def _json_anthropic(obj: Any, result: Result) -> None:
    obj = as_mapping(obj)
    usage = as_mapping(obj.get("usage"))
    result.response_model = as_str(obj.get("model"))
    result.response_id = as_str(obj.get("id"))
    result.service_tier = as_str(usage.get("service_tier"))
    result.usage = anthropic_usage(usage)


def _gemini_chunk(obj: Any, result: Result) -> bool:
    """Read one Gemini response (chunk); True when it carries a ``finishReason``."""
    obj = as_mapping(obj)
    if "error" in obj:
        result.error = "stream_error"
    result.response_model = as_str(obj.get("modelVersion")) or result.response_model
    result.response_id = as_str(obj.get("responseId")) or result.response_id
    metadata = obj.get("usageMetadata")
    if metadata is not None:
        result.usage = gemini_usage(metadata)
    candidates = obj.get("candidates")
    return isinstance(candidates, list) and any(
        as_mapping(c).get("finishReason") for c in candidates)


def read_json(api: str, obj: Any, result: Result) -> None:
    """Fill ``result`` from a whole decoded JSON body of the given API."""
    if api in (API_OPENAI_CHAT, API_OPENAI_COMPLETIONS):
        _json_openai(obj, result, chat_usage)
        if result.usage is None:
            result.usage = chat_usage(as_mapping(as_mapping(obj).get("x_groq")).get("usage"))
    elif api == API_OPENAI_RESPONSES:
        _json_openai(obj, result, responses_usage)
    elif api == API_OPENAI_EMBEDDINGS:
        _json_openai(obj, result, embeddings_usage)
    elif api == API_ANTHROPIC_MESSAGES:
        _json_anthropic(obj, result)
    elif api in (API_GEMINI, API_GEMINI_EMBED):
        chunks = obj if isinstance(obj, list) else [obj]
        for chunk in chunks:
            _gemini_chunk(chunk, result)
    result.complete = result.usage is not None
    result.ended = True


_TOP_KEYS = ("usage", "usageMetadata", "model", "modelVersion", "id", "responseId",
             "service_tier", "x_groq")
_DECODER = json.JSONDecoder()


def scan_large_json(head: bytes, tail: bytes) -> dict[str, Any]:
    """The top-level keys that matter, recovered from the head and tail of a huge body.

    Inside JSON strings a quote is always escaped, so ``"usage":`` with a bare quote is a
    key. ``usage``-like keys are taken from their LAST occurrence in the tail (they close
    the body), identifiers from their FIRST occurrence in the head, else the tail.
    """
    found: dict[str, Any] = {}
    head_text = head.decode("utf-8", "replace")
    tail_text = tail.decode("utf-8", "replace")
    for key in _TOP_KEYS:
        pattern = re.compile(r'"' + key + r'"\s*:\s*')
        late = key in ("usage", "usageMetadata", "model", "modelVersion", "x_groq")
        sources = [tail_text, head_text] if late else [head_text, tail_text]
        for text in sources:
            matches = list(pattern.finditer(text))
            if not matches:
                continue
            match = matches[-1] if text is tail_text else matches[0]
            try:
                found[key], _ = _DECODER.raw_decode(text, match.end())
                break
            except ValueError:
                continue
    return found


class JsonReader:
    """Buffers a JSON body (head and tail only beyond 1 MiB) and reads it at the end."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.result = Result()
        self._parts: list[bytes] = []
        self._size = 0
        self._head = b""
        self._tail = bytearray()
        self._large = False

    def feed(self, data: bytes) -> None:
        if not self._large:
            self._parts.append(data)
            self._size += len(data)
            if self._size > FULL_JSON_LIMIT:
                whole = b"".join(self._parts)
                self._parts = []
                self._head = whole[:_WINDOW]
                self._tail = bytearray(whole[-_WINDOW:])
                self._large = True
            return
        self._tail += data
        if len(self._tail) > 2 * _WINDOW:
            del self._tail[:-_WINDOW]

    def eof(self) -> None:
        try:
            if self._large:
                obj: Any = scan_large_json(self._head, bytes(self._tail[-_WINDOW:]))
            else:
                body = b"".join(self._parts)
                if not body.strip():
                    self.result.ended = True
                    return
                obj = json.loads(body)
            read_json(self.api, obj, self.result)
        except Exception:
            self.result.ended = True
            self.result.error = "unreadable_response"
        finally:
            self._parts = []
            self._tail = bytearray()


# -- server-sent events --------------------------------------------------------------------


class _ChatEvents:
    """Chat Completions chunks: the last ``usage`` wins; final once seen at/after the end.

    The usage counts as final when it arrives on a usage-only chunk (``choices: []``, the
    ``include_usage`` chunk), on or after a ``finish_reason``, or before ``[DONE]``.
    Servers that send cumulative usage on every chunk (vLLM ``continuous_usage_stats``)
    are therefore not mistaken for finished when the caller stops early. Groq's
    ``x_groq.usage`` is read too.
    """

    def __init__(self, result: Result) -> None:
        self.result = result
        self._finished = False

    def event(self, name: str | None, data: str) -> None:
        result = self.result
        if data.strip() == "[DONE]":
            result.ended = True
            result.complete = result.usage is not None
            return
        obj = as_mapping(json.loads(data))
        if "error" in obj and "choices" not in obj:
            result.error = "stream_error"
            return
        result.response_id = result.response_id or as_str(obj.get("id"))
        result.response_model = as_str(obj.get("model")) or result.response_model
        result.service_tier = as_str(obj.get("service_tier")) or result.service_tier
        choices = obj.get("choices")
        if isinstance(choices, list) and any(as_mapping(c).get("finish_reason") for c in choices):
            self._finished = True
        raw = obj.get("usage") or as_mapping(obj.get("x_groq")).get("usage")
        usage = chat_usage(raw) if raw else None
        if usage is not None:
            result.usage = usage
            if self._finished or choices == []:
                result.complete = True


_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class _ResponsesEvents:
    """Responses API events: the final ``response`` object carries usage and model."""

    _WANTED = _RESPONSES_TERMINAL | {"response.created", "response.in_progress", "error"}

    def __init__(self, result: Result) -> None:
        self.result = result

    def event(self, name: str | None, data: str) -> None:
        if name is not None and name not in self._WANTED:
            return
        obj = as_mapping(json.loads(data))
        kind = obj.get("type") or name
        if kind == "error":
            self.result.error = "stream_error"
            return
        response = as_mapping(obj.get("response"))
        if not response:
            return
        result = self.result
        result.response_id = as_str(response.get("id")) or result.response_id
        result.response_model = as_str(response.get("model")) or result.response_model
        result.service_tier = as_str(response.get("service_tier")) or result.service_tier
        if kind in _RESPONSES_TERMINAL:
            result.usage = responses_usage(response.get("usage"))
            result.complete = result.usage is not None
            result.ended = True


class _AnthropicEvents:
    """Messages events: ``message_start`` then ``message_delta`` usage, merged, later wins."""

    _WANTED = frozenset({"message_start", "message_delta", "message_stop", "error"})

    def __init__(self, result: Result) -> None:
        self.result = result
        self._usage: dict[str, Any] = {}

    def _merge(self, usage: Any) -> None:
        for key, value in as_mapping(usage).items():
            if value is None:
                continue
            if isinstance(value, Mapping) and isinstance(self._usage.get(key), Mapping):
                merged = dict(self._usage[key])
                merged.update({k: v for k, v in value.items() if v is not None})
                self._usage[key] = merged
            else:
                self._usage[key] = value
        self.result.usage = anthropic_usage(self._usage)
        self.result.service_tier = as_str(self._usage.get("service_tier"))

    def event(self, name: str | None, data: str) -> None:
        if name is not None and name not in self._WANTED:
            return
        obj = as_mapping(json.loads(data))
        kind = obj.get("type") or name
        result = self.result
        if kind == "message_start":
            message = as_mapping(obj.get("message"))
            result.response_id = as_str(message.get("id"))
            result.response_model = as_str(message.get("model"))
            self._merge(message.get("usage"))
        elif kind == "message_delta":
            if obj.get("usage") is not None:
                self._merge(obj.get("usage"))
                result.complete = result.usage is not None
        elif kind == "message_stop":
            result.ended = True
            result.complete = result.complete or (result.usage is not None and
                                                  "output_tokens" in self._usage)
        elif kind == "error":
            result.error = "stream_error"


class _GeminiEvents:
    """``streamGenerateContent?alt=sse``: the LAST chunk's ``usageMetadata`` only."""

    def __init__(self, result: Result) -> None:
        self.result = result

    def event(self, name: str | None, data: str) -> None:
        finished = _gemini_chunk(json.loads(data), self.result)
        if finished:
            self.result.ended = True
        if self.result.ended:
            self.result.complete = self.result.usage is not None


_EVENT_HANDLERS: dict[str, Callable[[Result], Any]] = {
    API_OPENAI_CHAT: _ChatEvents,
    API_OPENAI_COMPLETIONS: _ChatEvents,
    API_OPENAI_RESPONSES: _ResponsesEvents,
    API_ANTHROPIC_MESSAGES: _AnthropicEvents,
    API_GEMINI: _GeminiEvents,
}


class SseReader:
    """An incremental ``text/event-stream`` parser (``\\n``, ``\\r\\n`` or ``\\r`` lines)."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.result = Result()
        factory = _EVENT_HANDLERS.get(api)
        self._handler = factory(self.result) if factory else None
        self._buffer = b""
        self._name: str | None = None
        self._data: list[str] = []
        self._data_size = 0

    def feed(self, data: bytes) -> None:
        buffer = self._buffer + data
        start = 0
        length = len(buffer)
        while True:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else length)
            if cr >= 0:
                if cr + 1 == length:  # a CR at the end: it may be the first half of CRLF
                    break
                end, step = cr, 2 if buffer[cr + 1:cr + 2] == b"\n" else 1
            elif lf >= 0:
                end, step = lf, 1
            else:
                break
            self._line(buffer[start:end])
            start = end + step
        self._buffer = buffer[start:]
        if len(self._buffer) > _MAX_EVENT:
            self._buffer = b""
            self._skip_event()

    def eof(self) -> None:
        if self._buffer:
            self._line(self._buffer.rstrip(b"\r"))
            self._buffer = b""
        self._dispatch()

    def _skip_event(self) -> None:
        self._data = []
        self._data_size = _MAX_EVENT + 1

    def _line(self, line: bytes) -> None:
        if not line:
            self._dispatch()
            return
        if line.startswith(b":"):
            return
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":
            self._data_size += len(value)
            if self._data_size <= _MAX_EVENT:
                self._data.append(value.decode("utf-8", "replace"))
        elif field == b"event":
            self._name = value.decode("utf-8", "replace").strip() or None

    def _dispatch(self) -> None:
        name, data, size = self._name, self._data, self._data_size
        self._name, self._data, self._data_size = None, [], 0
        if not data or size > _MAX_EVENT or self._handler is None:
            return
        with contextlib.suppress(Exception):  # one malformed event: skip it, keep reading
            self._handler.event(name, "\n".join(data))


def make_reader(api: str, content_type: str | None) -> JsonReader | SseReader:
    """An SSE reader for ``text/event-stream`` bodies, else a JSON reader."""
    if content_type and "text/event-stream" in content_type.lower():
        return SseReader(api)
    return JsonReader(api)
