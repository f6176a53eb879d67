"""Anthropic wire format: ``POST /v1/messages`` (JSON and SSE).

Usage is rendered natively: ``input_tokens`` EXCLUDES cache reads and writes, which are
reported beside it (``cache_read_input_tokens``, ``cache_creation_input_tokens`` and the
``cache_creation`` 5m/1h split). A stream reports input and cache counts in
``message_start`` (with ``output_tokens`` 1) and the cumulative ``output_tokens`` in
``message_delta``, as the real API does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from paid_hooks.testing.fake.server import (
    Exchange,
    FakeProviderServer,
    FakeRequest,
    FakeResponse,
    FakeUsage,
    json_response,
    sse_event,
    sse_response,
)

__all__ = ["messages_usage", "register"]


def messages_usage(u: FakeUsage, *, output_tokens: int | None = None) -> dict[str, Any]:
    """Anthropic ``usage``: exclusive input plus the cache counts beside it."""
    writes_1h = u.cache_write_1h_tokens
    writes_5m = u.cache_write_tokens - writes_1h
    return {
        "input_tokens": u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "cache_creation": {"ephemeral_5m_input_tokens": writes_5m,
                           "ephemeral_1h_input_tokens": writes_1h},
        "output_tokens": u.output_tokens if output_tokens is None else output_tokens,
        "service_tier": "standard",
    }


def anthropic_error(status: int, message: str) -> FakeResponse:
    kind = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error",
            529: "overloaded_error"}.get(status, "api_error")
    return json_response(status, {"type": "error", "error": {"type": kind, "message": message}})


def messages(server: FakeProviderServer, request: FakeRequest,
             match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("anthropic", body)
    model = reply.model or body.get("model")
    stream = bool(body.get("stream"))
    usage = server.usage_for(reply, body)
    if reply.status >= 400:
        server.record(Exchange("anthropic", "chat", request.path, request.headers, body,
                               reply.status, None, model, None, stream, False))
        return anthropic_error(reply.status, reply.error_message)
    message_id = server.new_id("msg_")
    cut = reply.cut_stream_after
    server.record(Exchange("anthropic", "chat", request.path, request.headers, body, 200,
                           message_id, model, usage, stream,
                           not reply.omit_usage and not (stream and cut is not None)))
    message: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": reply.text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": messages_usage(usage),
    }
    if not stream:
        return json_response(200, message, gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        start = {**message, "content": [], "stop_reason": None,
                 "usage": messages_usage(usage, output_tokens=1)}
        yield sse_event({"type": "message_start", "message": start}, "message_start")
        yield sse_event({"type": "content_block_start", "index": 0,
                         "content_block": {"type": "text", "text": ""}}, "content_block_start")
        yield sse_event({"type": "ping"}, "ping")
        text = reply.text
        for i in range(0, len(text), 12):
            yield sse_event({"type": "content_block_delta", "index": 0,
                             "delta": {"type": "text_delta", "text": text[i:i + 12]}},
                            "content_block_delta")
        yield sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop")
        yield sse_event({"type": "message_delta",
                         "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                         "usage": {"output_tokens": usage.output_tokens}}, "message_delta")
        yield sse_event({"type": "message_stop"}, "message_stop")

    return sse_response(events(), cut_after=cut, gzip_body=reply.gzip)


def register(server: FakeProviderServer) -> None:
    server.route("POST", r"(?:/[^/]+)*/v1/messages", messages)
