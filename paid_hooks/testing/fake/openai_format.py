"""OpenAI wire format: ``POST /v1/chat/completions`` (JSON and SSE).

Streaming follows the real API: every chunk carries ``"usage": null`` when
``stream_options.include_usage`` is set, and one extra final chunk with ``"choices": []``
carries the usage, then ``data: [DONE]``. Without ``include_usage`` no usage is sent.
"""

from __future__ import annotations

import re
import time
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

__all__ = ["chat_usage", "register"]


def chat_usage(u: FakeUsage) -> dict[str, Any]:
    """OpenAI Chat Completions ``usage`` (inclusive counts, details as subsets)."""
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def openai_error(status: int, message: str) -> FakeResponse:
    return json_response(status, {"error": {"message": message, "type": "invalid_request_error",
                                            "param": None, "code": None}})


def _chunks(text: str, size: int = 12) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def chat_completions(server: FakeProviderServer, request: FakeRequest,
                     match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply: FakeReply = server.next_reply("openai", body)
    requested = body.get("model")
    model = reply.model or requested
    stream = bool(body.get("stream"))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    usage = server.usage_for(reply, body)
    if reply.status >= 400:
        server.record(Exchange("openai", "chat", request.path, request.headers, body,
                               reply.status, None, model, None, stream, False))
        return openai_error(reply.status, reply.error_message)
    response_id = server.new_id("chatcmpl-")
    created = int(time.time())
    tier = reply.service_tier or "default"
    usage_sent = not reply.omit_usage and (include_usage or not stream)
    cut = reply.cut_stream_after
    if stream and cut is not None:
        usage_sent = False
    server.record(Exchange("openai", "chat", request.path, request.headers, body, 200,
                           response_id, model, usage, stream, usage_sent))
    if not stream:
        payload: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None,
                            "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "service_tier": tier,
            "system_fingerprint": "fp_fake",
        }
        if not reply.omit_usage:
            payload["usage"] = chat_usage(usage)
        return json_response(200, payload, gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        base = {"id": response_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "service_tier": tier, "system_fingerprint": "fp_fake"}
        extra = {"usage": None} if include_usage else {}
        first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "",
                                                            "refusal": None},
                                      "logprobs": None, "finish_reason": None}], **extra}
        yield sse_event(first)
        for piece in _chunks(reply.text):
            yield sse_event({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                                  "logprobs": None, "finish_reason": None}],
                             **extra})
        yield sse_event({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                              "finish_reason": "stop"}], **extra})
        if include_usage and not reply.omit_usage:
            yield sse_event({**base, "choices": [], "usage": chat_usage(usage)})
        yield sse_event("[DONE]")

    return sse_response(events(), cut_after=cut, gzip_body=reply.gzip)


def register(server: FakeProviderServer) -> None:
    server.route("POST", r"(?:/[^/]+)*/v1/chat/completions", chat_completions)
