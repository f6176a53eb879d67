"""AWS Bedrock Runtime wire format, under the ``/bedrock`` prefix.

Point boto3 at it with ``boto3.client("bedrock-runtime", endpoint_url=fake.url + "/bedrock",
region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")``.

Routes (``{modelId}`` is URL-encoded in the path, ARNs included):

* ``POST /bedrock/model/{modelId}/converse``: Converse JSON;
* ``POST /bedrock/model/{modelId}/converse-stream``: ConverseStream, an AWS binary event
  stream (``application/vnd.amazon.eventstream``) of ``messageStart``,
  ``contentBlockDelta``..., ``contentBlockStop``, ``messageStop`` and ``metadata`` (usage);
* ``POST /bedrock/model/{modelId}/invoke``: InvokeModel. A model id containing
  ``anthropic.`` answers an Anthropic Messages body; any other model a Meta-Llama-style
  body (``generation``, ``prompt_token_count``, ``generation_token_count``). Both carry the
  ``x-amzn-bedrock-input-token-count`` / ``-output-token-count`` headers;
* ``POST /bedrock/model/{modelId}/invoke-with-response-stream``: the same bodies as
  ``chunk`` events (base64 JSON inside the event stream); the last chunk carries
  ``amazon-bedrock-invocationMetrics``.

Usage is rendered natively: Converse ``inputTokens`` EXCLUDES cache reads and writes
(``cacheReadInputTokens`` / ``cacheWriteInputTokens`` beside it, ``cacheDetails`` split
by TTL, ``totalTokens`` = everything), as the AWS prompt-caching guide documents.
Anthropic bodies use Anthropic's own exclusive usage.

Errors are AWS REST-JSON errors (``x-amzn-ErrorType`` header, ``{"message": ...}`` body),
so botocore raises its real ``ClientError`` subclass. ``FakeReply.extra`` knobs:
``error_code`` (override the error name chosen from the status);
``stream_exception_after`` (int: after that many events a stream sends an exception
message, ``modelStreamErrorException`` unless ``stream_exception`` names another, and
ends; botocore raises ``EventStreamError`` in the caller's loop).

The event-stream encoder (:func:`encode_event_message`) is written from the format
specification: prelude (total length, headers length, CRC32 of both), headers, payload,
CRC32 of the whole message.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from paid_hooks.testing.fake.anthropic_format import messages_usage
from paid_hooks.testing.fake.server import (
    Exchange,
    FakeProviderServer,
    FakeReply,
    FakeRequest,
    FakeResponse,
    FakeUsage,
    json_response,
    text_pieces,
    usage_sent,
)

__all__ = [
    "EVENTSTREAM_CONTENT_TYPE",
    "converse_usage",
    "encode_event_message",
    "register",
]

PREFIX = "/bedrock"
EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"

_STRING_HEADER = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")

_ERROR_CODES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


# -- binary event stream ------------------------------------------------------------------


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    out = bytearray()
    for name, value in headers.items():
        raw_name = name.encode("utf-8")
        raw_value = value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING_HEADER, len(raw_value)) + raw_value
    return bytes(out)


def encode_event_message(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, prelude CRC, string headers, payload, CRC."""
    encoded_headers = _encode_headers(headers)
    total = _PRELUDE.size + _CRC.size + len(encoded_headers) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded_headers))
    head = prelude + _CRC.pack(binascii.crc32(prelude) & 0xFFFFFFFF)
    body = head + encoded_headers + payload
    return body + _CRC.pack(binascii.crc32(body) & 0xFFFFFFFF)


def _event(event_type: str, payload: Mapping[str, Any]) -> bytes:
    return encode_event_message(
        {":event-type": event_type, ":content-type": "application/json",
         ":message-type": "event"},
        json.dumps(payload, separators=(",", ":")).encode(),
    )


# -- usage rendering ----------------------------------------------------------------------


def converse_usage(u: FakeUsage) -> dict[str, Any]:
    """Converse ``TokenUsage``: ``inputTokens`` without the cache, the cache beside it."""
    out: dict[str, Any] = {
        "inputTokens": u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
        "outputTokens": u.output_tokens,
        "totalTokens": u.input_tokens + u.output_tokens,
    }
    if u.cache_read_tokens or u.cache_write_tokens:
        out["cacheReadInputTokens"] = u.cache_read_tokens
        out["cacheWriteInputTokens"] = u.cache_write_tokens
    if u.cache_write_tokens:
        details = []
        if u.cache_write_1h_tokens:
            details.append({"ttl": "1h", "inputTokens": u.cache_write_1h_tokens})
        if u.cache_write_tokens - u.cache_write_1h_tokens:
            details.append({"ttl": "5m",
                            "inputTokens": u.cache_write_tokens - u.cache_write_1h_tokens})
        out["cacheDetails"] = details
    return out


def _invocation_metrics(u: FakeUsage) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "inputTokenCount": u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
        "outputTokenCount": u.output_tokens,
        "invocationLatency": 321,
        "firstByteLatency": 45,
    }
    if u.cache_read_tokens or u.cache_write_tokens:
        metrics["cacheReadInputTokenCount"] = u.cache_read_tokens
        metrics["cacheWriteInputTokenCount"] = u.cache_write_tokens
    return metrics


def _anthropic_model_name(model_id: str) -> str:
    """``us.anthropic.claude-x-20240620-v1:0`` -> ``claude-x-20240620`` (as Bedrock bodies say)."""
    name = model_id.rsplit("/", 1)[-1]
    name = name.split("anthropic.", 1)[-1]
    return re.sub(r"-v\d+(:\d+)?$", "", name)


def _is_anthropic(model_id: str) -> bool:
    return "anthropic." in model_id


# -- handlers -----------------------------------------------------------------------------


def _exception_event(name: str, message: str) -> bytes:
    return encode_event_message(
        {":exception-type": name, ":content-type": "application/json",
         ":message-type": "exception"},
        json.dumps({"message": message, "originalStatusCode": 500}).encode(),
    )


def _error(reply: FakeReply, request_id: str) -> FakeResponse:
    code = str(reply.extra.get("error_code") or _ERROR_CODES.get(reply.status,
                                                                 "InternalServerException"))
    return json_response(reply.status, {"message": reply.error_message}, headers={
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": request_id,
    })


def _stream_response(events: Iterator[bytes], reply: FakeReply,
                     headers: dict[str, str]) -> FakeResponse:
    fail_after = reply.extra.get("stream_exception_after")
    if isinstance(fail_after, int):
        events = _failing(events, fail_after,
                          str(reply.extra.get("stream_exception", "modelStreamErrorException")),
                          reply.error_message)
    return FakeResponse(status=200, headers={"content-type": EVENTSTREAM_CONTENT_TYPE, **headers},
                        stream=events, cut_after=reply.cut_stream_after)


def _failing(events: Iterator[bytes], after: int, name: str, message: str) -> Iterator[bytes]:
    for index, event in enumerate(events):
        if index == after:
            break
        yield event
    yield _exception_event(name, message)


def _begin(server: FakeProviderServer, request: FakeRequest, body: Any, operation: str,
           model_id: str, stream: bool) -> FakeResponse | tuple[FakeReply, str, FakeUsage]:
    """Take the next reply and log the exchange: ``(reply, request id, usage)``, or the
    error response when the reply is an error."""
    reply = server.next_reply("bedrock", body)
    request_id = server.new_id("req-")
    if reply.status >= 400:
        server.record_error("bedrock", operation, request, body, reply, model_id, stream,
                            response_id=request_id)
        return _error(reply, request_id)
    usage = server.usage_for(reply, body)
    server.record(Exchange("bedrock", operation, request.path, request.headers, body, 200,
                           request_id, model_id, usage, stream, usage_sent(reply, stream)))
    return reply, request_id, usage


def _converse(server: FakeProviderServer, request: FakeRequest, model_id: str,
              stream: bool) -> FakeResponse:
    body = request.json() or {}
    begun = _begin(server, request, body, "ConverseStream" if stream else "Converse",
                   model_id, stream)
    if isinstance(begun, FakeResponse):
        return begun
    reply, request_id, usage = begun
    headers = {"x-amzn-RequestId": request_id}
    if not stream:
        payload: dict[str, Any] = {
            "output": {"message": {"role": "assistant", "content": [{"text": reply.text}]}},
            "stopReason": "end_turn",
            "metrics": {"latencyMs": 321},
        }
        if not reply.omit_usage:
            payload["usage"] = converse_usage(usage)
        if reply.service_tier:
            payload["serviceTier"] = {"type": reply.service_tier}
        return json_response(200, payload, headers=headers)

    def events() -> Iterator[bytes]:
        yield _event("messageStart", {"role": "assistant", "p": "abcdefgh"})
        for piece in text_pieces(reply.text):
            yield _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece},
                                               "p": "abcd"})
        yield _event("contentBlockStop", {"contentBlockIndex": 0, "p": "abcdef"})
        yield _event("messageStop", {"stopReason": "end_turn", "p": "ab"})
        if not reply.omit_usage:
            metadata: dict[str, Any] = {"usage": converse_usage(usage),
                                        "metrics": {"latencyMs": 321}, "p": "abc"}
            if reply.service_tier:
                metadata["serviceTier"] = {"type": reply.service_tier}
            yield _event("metadata", metadata)

    return _stream_response(events(), reply, headers)


def _invoke_headers(request_id: str, usage: FakeUsage, reply: FakeReply) -> dict[str, str]:
    headers = {"x-amzn-RequestId": request_id, "X-Amzn-Bedrock-Invocation-Latency": "321"}
    if not reply.omit_usage:
        headers["X-Amzn-Bedrock-Input-Token-Count"] = str(
            usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens)
        headers["X-Amzn-Bedrock-Output-Token-Count"] = str(usage.output_tokens)
    if reply.service_tier:
        headers["X-Amzn-Bedrock-Service-Tier"] = reply.service_tier
    return headers


def _anthropic_events(model_id: str, message_id: str, reply: FakeReply,
                      usage: FakeUsage) -> Iterator[dict[str, Any]]:
    start_usage = messages_usage(usage, output_tokens=1)
    start_usage.pop("service_tier", None)
    yield {"type": "message_start", "message": {
        "id": message_id, "type": "message", "role": "assistant",
        "model": _anthropic_model_name(model_id), "content": [], "stop_reason": None,
        "stop_sequence": None,
        **({} if reply.omit_usage else {"usage": start_usage})}}
    yield {"type": "content_block_start", "index": 0,
           "content_block": {"type": "text", "text": ""}}
    for piece in text_pieces(reply.text):
        yield {"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": piece}}
    yield {"type": "content_block_stop", "index": 0}
    delta: dict[str, Any] = {"type": "message_delta",
                             "delta": {"stop_reason": "end_turn", "stop_sequence": None}}
    if not reply.omit_usage:
        delta["usage"] = {"output_tokens": usage.output_tokens}
    yield delta
    stop: dict[str, Any] = {"type": "message_stop"}
    if not reply.omit_usage:
        stop["amazon-bedrock-invocationMetrics"] = _invocation_metrics(usage)
    yield stop


def _generic_events(reply: FakeReply, usage: FakeUsage) -> Iterator[dict[str, Any]]:
    pieces = text_pieces(reply.text)
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        chunk: dict[str, Any] = {
            "generation": piece,
            "prompt_token_count": None if index or reply.omit_usage else usage.input_tokens,
            "generation_token_count": None if reply.omit_usage else (
                usage.output_tokens if last else index + 1),
            "stop_reason": "stop" if last else None,
        }
        if last and not reply.omit_usage:
            chunk["amazon-bedrock-invocationMetrics"] = _invocation_metrics(usage)
        yield chunk


def _invoke(server: FakeProviderServer, request: FakeRequest, model_id: str,
            stream: bool) -> FakeResponse:
    try:
        body = request.json() or {}
    except ValueError:
        body = {}
    begun = _begin(server, request, body,
                   "InvokeModelWithResponseStream" if stream else "InvokeModel", model_id, stream)
    if isinstance(begun, FakeResponse):
        return begun
    reply, request_id, usage = begun
    headers = _invoke_headers(request_id, usage, reply)
    anthropic = _is_anthropic(model_id)
    message_id = server.new_id("msg_bdrk_")
    if not stream:
        payload: dict[str, Any]
        if anthropic:
            payload = {
                "id": message_id, "type": "message", "role": "assistant",
                "model": _anthropic_model_name(model_id),
                "content": [{"type": "text", "text": reply.text}],
                "stop_reason": "end_turn", "stop_sequence": None,
            }
            if not reply.omit_usage:
                anthropic_usage = messages_usage(usage)
                anthropic_usage.pop("service_tier", None)
                payload["usage"] = anthropic_usage
        else:
            payload = {"generation": reply.text, "stop_reason": "stop"}
            if not reply.omit_usage:
                payload["prompt_token_count"] = usage.input_tokens
                payload["generation_token_count"] = usage.output_tokens
        return json_response(200, payload, headers=headers)

    chunks = (_anthropic_events(model_id, message_id, reply, usage) if anthropic
              else _generic_events(reply, usage))

    def events() -> Iterator[bytes]:
        for chunk in chunks:
            data = base64.b64encode(json.dumps(chunk, separators=(",", ":")).encode()).decode()
            yield _event("chunk", {"bytes": data, "p": "abcdefghij"})

    stream_headers = {k: v for k, v in headers.items() if "token-count" not in k.lower()}
    stream_headers["X-Amzn-Bedrock-Content-Type"] = "application/json"
    return _stream_response(events(), reply, stream_headers)


_OPERATIONS = {
    "converse": lambda s, r, m: _converse(s, r, m, stream=False),
    "converse-stream": lambda s, r, m: _converse(s, r, m, stream=True),
    "invoke": lambda s, r, m: _invoke(s, r, m, stream=False),
    "invoke-with-response-stream": lambda s, r, m: _invoke(s, r, m, stream=True),
}


def _dispatch(server: FakeProviderServer, request: FakeRequest,
              match: re.Match[str]) -> FakeResponse:
    model_id = unquote(match.group("model"))
    return _OPERATIONS[match.group("op")](server, request, model_id)


def register(server: FakeProviderServer) -> None:
    server.route("POST", PREFIX + r"/model/(?P<model>[^/]+)/"
                 r"(?P<op>converse|converse-stream|invoke|invoke-with-response-stream)",
                 _dispatch)
