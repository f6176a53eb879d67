"""Gemini API wire format (google-genai): generateContent, SSE streaming and embeddings.

Point the SDK at it with
``genai.Client(api_key=..., http_options=types.HttpOptions(base_url=fake.url))``.

Routes (any API version prefix: ``/v1``, ``/v1beta``, Vertex's ``/v1beta1/projects/...``):

* ``POST .../models/{model}:generateContent``: a ``GenerateContentResponse`` JSON body.
* ``POST .../models/{model}:streamGenerateContent?alt=sse``: data-only SSE events, each
  ended with ``\\r\\n\\r\\n`` as the real API does. EVERY chunk carries a
  ``usageMetadata``; only the LAST (the one with ``finishReason``) is complete. Earlier
  chunks report the full prompt and the candidates generated so far, so a client that
  sums chunks over-counts and one that reads the first under-counts.
* ``POST .../models/{model}:batchEmbedContents`` (what the SDK calls for the Gemini API)
  and ``:embedContent``: embeddings with ``usageMetadata.promptTokenCount``.

Usage is rendered natively from the canonical :class:`FakeUsage`:

* ``promptTokenCount`` INCLUDES ``cachedContentTokenCount`` (the cache read count);
* ``candidatesTokenCount`` EXCLUDES ``thoughtsTokenCount`` (the reasoning count), so
  ``candidatesTokenCount = output_tokens - reasoning_tokens``;
* ``FakeReply.extra["tool_use_prompt_tokens"]`` (default 0) is the part of
  ``input_tokens`` reported as ``toolUsePromptTokenCount``, beside ``promptTokenCount``;
* ``FakeReply.extra["prompt_audio_tokens"]`` (default 0) is the part of the prompt
  reported under the ``AUDIO`` modality in ``promptTokensDetails``;
* zero counts are left out, as the API's proto3 JSON does.

``FakeReply.extra["function_call"]`` (``{"name": ..., "args": {...}}``) answers with a
``functionCall`` part instead of text, so the SDK's automatic function calling sends a
follow-up request (queue a second reply for it).

The model is echoed in ``modelVersion`` (``FakeReply.model`` or the model in the path),
and every response carries a ``responseId``. Errors use Google's body
(``{"error": {"code", "message", "status"}}``).
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
    collect_text,
    estimate_tokens,
    json_response,
    sse_event,
    sse_response,
    text_pieces,
    usage_sent,
)

__all__ = ["gemini_usage", "register"]

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def gemini_error(status: int, message: str) -> FakeResponse:
    return json_response(status, {"error": {"code": status, "message": message,
                                            "status": _STATUS_NAMES.get(status, "UNKNOWN")}})


def gemini_usage(u: FakeUsage, *, tool_use_prompt_tokens: int = 0,
                 prompt_audio_tokens: int = 0,
                 candidates_so_far: int | None = None) -> dict[str, Any]:
    """Gemini ``usageMetadata`` (camelCase, zero counts omitted).

    ``candidates_so_far`` renders a partial (mid-stream) usage: the prompt is complete,
    the candidates count is what was generated so far.
    """
    prompt = u.input_tokens - tool_use_prompt_tokens
    thoughts = u.reasoning_tokens
    candidates = u.output_tokens - thoughts
    if candidates_so_far is not None:
        candidates = candidates_so_far
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt + candidates + thoughts + tool_use_prompt_tokens
    if u.cache_read_tokens:
        usage["cachedContentTokenCount"] = u.cache_read_tokens
    details = [{"modality": "TEXT", "tokenCount": prompt - prompt_audio_tokens}]
    if prompt_audio_tokens:
        details.append({"modality": "AUDIO", "tokenCount": prompt_audio_tokens})
    usage["promptTokensDetails"] = details
    if u.cache_read_tokens:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.cache_read_tokens}]
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if tool_use_prompt_tokens:
        usage["toolUsePromptTokenCount"] = tool_use_prompt_tokens
        usage["toolUsePromptTokensDetails"] = [{"modality": "TEXT",
                                                "tokenCount": tool_use_prompt_tokens}]
    return usage


def _usage_kwargs(reply: FakeReply) -> dict[str, int]:
    return {"tool_use_prompt_tokens": int(reply.extra.get("tool_use_prompt_tokens", 0)),
            "prompt_audio_tokens": int(reply.extra.get("prompt_audio_tokens", 0))}


def _candidate(text: str, finish: bool, reply: FakeReply | None = None) -> dict[str, Any]:
    call = reply.extra.get("function_call") if reply is not None else None
    part: dict[str, Any] = {"functionCall": call} if call else {"text": text}
    candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return candidate


def generate_content(server: FakeProviderServer, request: FakeRequest,
                     match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("gemini", body)
    model = reply.model or match["model"]
    stream = match["method"] == "streamGenerateContent"
    usage = server.usage_for(reply, body)
    if reply.status >= 400:
        server.record_error("gemini", "generate_content", request, body, reply, model, stream)
        return gemini_error(reply.status, reply.error_message)
    response_id = server.new_id("resp-")
    cut = reply.cut_stream_after
    server.record(Exchange("gemini", "generate_content", request.path, request.headers,
                           body, 200, response_id, model, usage, stream,
                           usage_sent(reply, stream)))
    kwargs = _usage_kwargs(reply)
    base = {"modelVersion": model, "responseId": response_id}
    if not stream:
        payload: dict[str, Any] = {"candidates": [_candidate(reply.text, True, reply)]}
        if not reply.omit_usage:
            payload["usageMetadata"] = gemini_usage(usage, **kwargs)
        return json_response(200, {**payload, **base}, gzip_body=reply.gzip)

    pieces = text_pieces(reply.text)
    visible = usage.output_tokens - usage.reasoning_tokens

    def events() -> Iterator[bytes]:
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            chunk: dict[str, Any] = {"candidates": [_candidate(piece, last)]}
            if not reply.omit_usage:
                so_far = None if last else visible * (i + 1) // (len(pieces) + 1)
                chunk["usageMetadata"] = gemini_usage(usage, candidates_so_far=so_far,
                                                      **kwargs)
            yield sse_event({**chunk, **base}, terminator=b"\r\n\r\n")

    return sse_response(events(), cut_after=cut, gzip_body=reply.gzip)


def _embedding_tokens(reply: FakeReply, texts: list[str]) -> int:
    if reply.usage is not None:
        return reply.usage.input_tokens
    return sum(estimate_tokens(t) for t in texts) or 1


def embed(server: FakeProviderServer, request: FakeRequest,
          match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("gemini", body)
    model = reply.model or match["model"]
    if reply.status >= 400:
        server.record_error("gemini", "embeddings", request, body, reply, model, False)
        return gemini_error(reply.status, reply.error_message)
    batch = match["method"] == "batchEmbedContents"
    items = body.get("requests", []) if batch else [body]
    texts = [collect_text(item.get("content")) for item in items]
    tokens = _embedding_tokens(reply, texts)
    server.record(Exchange("gemini", "embeddings", request.path, request.headers, body, 200,
                           None, model, FakeUsage(tokens, 0), False, not reply.omit_usage))
    vector = {"values": [0.0, 0.1, 0.2, 0.3]}
    payload: dict[str, Any] = ({"embeddings": [vector for _ in items]} if batch
                               else {"embedding": vector})
    if not reply.omit_usage:
        payload["usageMetadata"] = {"promptTokenCount": tokens, "totalTokenCount": tokens}
    return json_response(200, payload, gzip_body=reply.gzip)


def register(server: FakeProviderServer) -> None:
    prefix = r"(?:/[^/]+)*/models/(?P<model>[^/:]+)"
    server.route("POST", prefix + r":(?P<method>generateContent|streamGenerateContent)",
                 generate_content)
    server.route("POST", prefix + r":(?P<method>batchEmbedContents|embedContent)", embed)
