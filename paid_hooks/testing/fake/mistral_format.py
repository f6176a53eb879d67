"""Mistral wire format, served under the ``/mistral`` prefix (JSON and SSE).

Point the SDK at it with ``Mistral(api_key=..., server_url=mistral_url(fake))``
(``fake.url + "/mistral"``). The prefix tells Mistral apart from OpenAI, whose
``/v1/chat/completions`` path is the same; these routes are registered ahead of the
OpenAI route so that the prefix wins.

Routes:

* ``POST /mistral/v1/chat/completions``: a ``chat.completion`` JSON body, or with
  ``"stream": true`` data-only SSE chunks (``chat.completion.chunk``) ending with
  ``data: [DONE]``. As the real API does, the stream needs no ``stream_options``: the
  final chunk carries ``finish_reason`` and the ``usage``; earlier chunks carry none.
* ``POST /mistral/v1/embeddings``: one vector per item of ``input`` and a ``usage``
  (``prompt_tokens`` = ``FakeReply.usage.input_tokens``, or about 4 characters a token
  of the inputs; ``total_tokens`` the same; ``completion_tokens`` 0).
* ``POST /mistral/v1/ocr``: an OCR response whose ``usage_info.pages_processed`` is
  ``FakeReply.extra["pages"]`` (default 1).

Usage is rendered natively and inclusively: ``prompt_tokens`` includes the cached
tokens reported in ``prompt_tokens_details.cached_tokens`` (only when there are any),
``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens`` (only when
there are any). ``FakeReply.service_tier`` becomes ``usage.service_tier``.

Errors use Mistral's body (``{"object": "error", "message": ..., "type": ...}``); a 422
uses the validation-error body (``{"detail": [...]}``) the SDK parses into
``HTTPValidationError``.
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
    collect_text,
    estimate_tokens,
    json_response,
    sse_event,
    sse_response,
    text_pieces,
    usage_sent,
)

__all__ = ["PREFIX", "mistral_url", "mistral_usage", "register"]

PREFIX = "/mistral"
"""Path prefix of every Mistral route."""


def mistral_url(server: FakeProviderServer) -> str:
    """``server_url`` for ``mistralai.client.Mistral`` pointed at ``server``."""
    return server.url + PREFIX


def mistral_usage(u: FakeUsage, *, service_tier: str | None = None) -> dict[str, Any]:
    """Mistral ``usage`` (``UsageInfo``): inclusive counts, details only when non-zero."""
    usage: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_audio_seconds": None,
    }
    if u.cache_read_tokens:
        usage["prompt_tokens_details"] = {"cached_tokens": u.cache_read_tokens}
    if u.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    if service_tier is not None:
        usage["service_tier"] = service_tier
    return usage


def mistral_error(status: int, message: str) -> FakeResponse:
    if status == 422:
        return json_response(422, {"detail": [{"loc": ["body"], "msg": message,
                                               "type": "value_error"}]})
    kind = {400: "invalid_request_error", 401: "authentication_error",
            429: "rate_limit_error"}.get(status, "api_error")
    return json_response(status, {"object": "error", "message": message, "type": kind,
                                  "param": None, "code": str(status)})


def _error(server: FakeProviderServer, request: FakeRequest, operation: str, body: Any,
           reply: FakeReply, model: str | None, stream: bool) -> FakeResponse:
    server.record_error("mistral", operation, request, body, reply, model, stream)
    return mistral_error(reply.status, reply.error_message)


def chat_completions(server: FakeProviderServer, request: FakeRequest,
                     match: re.Match[str]) -> FakeResponse:
    body, reply, model, stream, usage = server.begin_json(request, "mistral")
    if reply.status >= 400:
        return _error(server, request, "chat", body, reply, model, stream)
    response_id = server.new_id("cmpl-")
    created = int(time.time())
    cut = reply.cut_stream_after
    server.record(Exchange("mistral", "chat", request.path, request.headers, body, 200,
                           response_id, model, usage, stream, usage_sent(reply, stream)))
    rendered_usage = mistral_usage(usage, service_tier=reply.service_tier)
    if not stream:
        payload: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion",
            "model": model,
            "created": created,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "tool_calls": None,
                            "prefix": False},
                "finish_reason": "stop",
            }],
        }
        if not reply.omit_usage:
            payload["usage"] = rendered_usage
        return json_response(200, payload, gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        base = {"id": response_id, "object": "chat.completion.chunk", "created": created,
                "model": model}
        yield sse_event({**base, "choices": [{"index": 0,
                                              "delta": {"role": "assistant", "content": ""},
                                              "finish_reason": None}]})
        for piece in text_pieces(reply.text):
            yield sse_event({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                                  "finish_reason": None}]})
        last: dict[str, Any] = {**base, "choices": [{"index": 0, "delta": {"content": ""},
                                                     "finish_reason": "stop"}]}
        if not reply.omit_usage:
            last["usage"] = rendered_usage
        yield sse_event(last)
        yield sse_event("[DONE]")

    return sse_response(events(), cut_after=cut, gzip_body=reply.gzip)


def embeddings(server: FakeProviderServer, request: FakeRequest,
               match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("mistral", body)
    model = reply.model or body.get("model")
    if reply.status >= 400:
        return _error(server, request, "embeddings", body, reply, model, False)
    inputs = body.get("input")
    texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
    if reply.usage is not None:
        prompt = reply.usage.input_tokens
    else:
        prompt = sum(estimate_tokens(collect_text(t)) for t in texts) or 1
    usage = FakeUsage(input_tokens=prompt, output_tokens=0)
    response_id = server.new_id("emb-")
    server.record(Exchange("mistral", "embeddings", request.path, request.headers, body, 200,
                           response_id, model, usage, False, not reply.omit_usage))
    payload: dict[str, Any] = {
        "id": response_id,
        "object": "list",
        "model": model,
        "data": [{"object": "embedding", "embedding": [0.0, 0.1, 0.2, 0.3], "index": i}
                 for i in range(len(texts))],
    }
    if not reply.omit_usage:
        payload["usage"] = {"prompt_tokens": prompt, "total_tokens": prompt,
                            "completion_tokens": 0}
    return json_response(200, payload, gzip_body=reply.gzip)


def ocr(server: FakeProviderServer, request: FakeRequest,
        match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("mistral", body)
    model = reply.model or body.get("model")
    if reply.status >= 400:
        return _error(server, request, "ocr", body, reply, model, False)
    pages = int(reply.extra.get("pages", 1))
    server.record(Exchange("mistral", "ocr", request.path, request.headers, body, 200,
                           None, model, None, False, not reply.omit_usage))
    payload: dict[str, Any] = {
        "pages": [{"index": i, "markdown": f"# Page {i + 1}\n\n{reply.text}", "images": [],
                   "dimensions": {"dpi": 200, "height": 2200, "width": 1700}}
                  for i in range(pages)],
        "model": model,
        "document_annotation": None,
    }
    if not reply.omit_usage:
        payload["usage_info"] = {"pages_processed": pages, "doc_size_bytes": 40_000 * pages}
    return json_response(200, payload, gzip_body=reply.gzip)


def register(server: FakeProviderServer) -> None:
    # Registered FIRST: the OpenAI route (``.../v1/chat/completions`` under any prefix)
    # would otherwise answer Mistral's chat requests.
    routes = [
        ("POST", rf"(?:/[^/]+)*{PREFIX}/v1/chat/completions", chat_completions),
        ("POST", rf"(?:/[^/]+)*{PREFIX}/v1/embeddings", embeddings),
        ("POST", rf"(?:/[^/]+)*{PREFIX}/v1/ocr", ocr),
    ]
    for method, pattern, handler in reversed(routes):
        server.route(method, pattern, handler, first=True)
