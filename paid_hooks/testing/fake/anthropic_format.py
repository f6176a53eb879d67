"""Anthropic wire format: ``POST /v1/messages`` (JSON and SSE; the beta API uses the same path).

Usage is rendered natively: ``input_tokens`` EXCLUDES cache reads and writes, which are
reported beside it (``cache_read_input_tokens``, ``cache_creation_input_tokens`` and the
``cache_creation`` 5m/1h split); ``output_tokens`` INCLUDES thinking, and a non-zero
``FakeUsage.reasoning_tokens`` is reported as ``output_tokens_details.thinking_tokens``.
A stream reports input and cache counts in ``message_start`` (with ``output_tokens`` 1)
and the cumulative ``output_tokens`` (plus the thinking and server-tool breakdowns) in
``message_delta``, as the real API does.

Provider knobs in ``FakeReply.extra``:

* ``web_search_requests`` (int): report ``server_tool_use.web_search_requests``;
* ``delta_usage`` = ``"full"``: ``message_delta`` also repeats the cumulative input and
  cache counts (the real API does so, e.g. with server tools);
* ``compaction`` (:class:`FakeUsage`): a beta compaction iteration; its tokens are
  reported only in ``usage.iterations`` (NOT in the top-level counts, as documented);
* ``stream_error`` = ``"before_start"`` / ``"after_start"``: the stream sends an
  ``event: error`` (``overloaded_error``) first, or right after ``message_start``.

``FakeReply.service_tier`` sets ``usage.service_tier`` (default ``standard``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from paid_hooks.testing.fake.server import (
    Exchange,
    FakeProviderServer,
    FakeReply,
    FakeRequest,
    FakeResponse,
    FakeUsage,
    json_response,
    sse_event,
    sse_response,
)

__all__ = ["messages_usage", "register"]


def _exclusive_counts(u: FakeUsage) -> dict[str, Any]:
    writes_1h = u.cache_write_1h_tokens
    writes_5m = u.cache_write_tokens - writes_1h
    return {
        "input_tokens": u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": writes_5m,
                           "ephemeral_1h_input_tokens": writes_1h},
    }


def messages_usage(u: FakeUsage, *, output_tokens: int | None = None,
                   reply: FakeReply | None = None, final: bool = True) -> dict[str, Any]:
    """Anthropic ``usage``: exclusive input plus the cache counts beside it.

    ``final=False`` renders the ``message_start`` usage of a stream (no output breakdown).
    """
    extra = reply.extra if reply is not None else {}
    usage: dict[str, Any] = {
        **_exclusive_counts(u),
        "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
        "service_tier": (reply.service_tier if reply is not None else None) or "standard",
    }
    if final:
        usage.update(_final_details(u, extra))
    return usage


def _final_details(u: FakeUsage, extra: dict[str, Any]) -> dict[str, Any]:
    """The parts of usage that only the complete response (or the last delta) carries."""
    details: dict[str, Any] = {}
    if u.reasoning_tokens:
        details["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    searches = extra.get("web_search_requests")
    if searches is not None:
        details["server_tool_use"] = {"web_search_requests": int(searches),
                                      "web_fetch_requests": 0}
    compaction = extra.get("compaction")
    if isinstance(compaction, FakeUsage):
        details["iterations"] = [
            {"type": "compaction", **_exclusive_counts(compaction),
             "output_tokens": compaction.output_tokens},
            {"type": "message", **_exclusive_counts(u), "output_tokens": u.output_tokens},
        ]
    return details


def anthropic_error(status: int, message: str) -> FakeResponse:
    kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
            529: "overloaded_error"}.get(status, "api_error")
    return json_response(status, {"type": "error", "error": {"type": kind, "message": message}})


def messages(server: FakeProviderServer, request: FakeRequest,
             match: re.Match[str]) -> FakeResponse:
    body, reply, model, stream, usage = server.begin_json(request, "anthropic")
    if reply.status >= 400:
        server.record_error("anthropic", "chat", request, body, reply, model, stream)
        return anthropic_error(reply.status, reply.error_message)
    message_id = server.new_id("msg_")
    cut = reply.cut_stream_after
    stream_broken = cut is not None or bool(reply.extra.get("stream_error"))
    server.record(Exchange("anthropic", "chat", request.path, request.headers, body, 200,
                           message_id, model, usage, stream,
                           not reply.omit_usage and not (stream and stream_broken)))
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": messages_usage(usage, reply=reply),
    }
    if not stream:
        return json_response(200, message, gzip_body=reply.gzip)

    error_event = sse_event({"type": "error", "error": {"type": "overloaded_error",
                                                        "message": "Overloaded"}}, "error")

    def events() -> Iterator[bytes]:
        if reply.extra.get("stream_error") == "before_start":
            yield error_event
            return
        start = {**message, "content": [], "stop_reason": None,
                 "usage": messages_usage(usage, output_tokens=1, reply=reply, final=False)}
        yield sse_event({"type": "message_start", "message": start}, "message_start")
        if reply.extra.get("stream_error") == "after_start":
            yield error_event
            return
        yield sse_event({"type": "content_block_start", "index": 0,
                         "content_block": {"type": "text", "text": ""}}, "content_block_start")
        yield sse_event({"type": "ping"}, "ping")
        text = reply.text
        for i in range(0, len(text), 12):
            yield sse_event({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": text[i:i + 12]}},
                            "content_block_delta")
        yield sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop")
        delta_usage: dict[str, Any] = {"output_tokens": usage.output_tokens}
        if reply.extra.get("delta_usage") == "full":
            counts = _exclusive_counts(usage)
            counts.pop("cache_creation")
            delta_usage.update(counts)
        delta_usage.update(_final_details(usage, reply.extra))
        yield sse_event({"type": "message_delta",
                         "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                         "usage": delta_usage}, "message_delta")
        yield sse_event({"type": "message_stop"}, "message_stop")

    return sse_response(events(), cut_after=cut, gzip_body=reply.gzip)


def register(server: FakeProviderServer) -> None:
    server.route("POST", r"(?:/[^/]+)*/v1/messages", messages)
