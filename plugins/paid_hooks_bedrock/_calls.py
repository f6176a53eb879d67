"""Recording one Bedrock Runtime call, shared by the wrapper and the botocore event hooks.

Both entry points start a handle with :func:`start`, run the SDK call, and hand the
parsed response dict to :func:`finish_response`, which records the call or (for streams
and InvokeModel bodies) replaces the response's ``stream`` / ``body`` with an equivalent
object that records it. The caller gets the same response dict, events and bytes.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import paid_hooks
from paid_hooks.plugin_kit import call_exclusive
from paid_hooks_bedrock._models import normalize_model_id
from paid_hooks_bedrock._usage import (
    ConverseStreamUsage,
    InvokeStreamUsage,
    converse_usage,
    invoke_body_usage,
    service_tier,
)

__all__ = [
    "CAPTURED_BY",
    "OPERATIONS",
    "PROVIDER",
    "error_response_id",
    "finish_response",
    "record_call",
    "start",
]

log = logging.getLogger("paid_hooks_bedrock")

PROVIDER = "aws.bedrock"
CAPTURED_BY = "bedrock"
OPERATIONS = ("Converse", "ConverseStream", "InvokeModel", "InvokeModelWithResponseStream")
"""Bedrock Runtime operations that are recorded (botocore operation names)."""
STREAMING = frozenset({"ConverseStream", "InvokeModelWithResponseStream"})


def _semconv_operation(operation: str, params: Mapping[str, Any]) -> str:
    """``gen_ai.operation.name``: ``chat`` for Converse and Messages bodies."""
    if operation in ("Converse", "ConverseStream"):
        return "chat"
    model_id = params.get("modelId")
    if isinstance(model_id, str) and "embed" in model_id:
        return "embeddings"
    body = params.get("body")
    if isinstance(body, bytes | bytearray | str):  # never read a caller's file-like body
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if isinstance(payload, Mapping) and "messages" in payload:
            return "chat"
    return "text_completion"


def start(operation: str, params: Mapping[str, Any],
          endpoint_url: str | None) -> paid_hooks.CallHandle:
    """Begin recording ``operation`` called with the API parameters ``params``."""
    model_id = params.get("modelId")
    try:
        host = urlsplit(endpoint_url).hostname if endpoint_url else None
    except ValueError:
        host = None
    return paid_hooks.start_call(
        provider=PROVIDER,
        operation=_semconv_operation(operation, params),
        request_model=model_id if isinstance(model_id, str) else None,
        captured_by=CAPTURED_BY,
        streaming=operation in STREAMING,
        server_address=host,
    )


def _response_id(response: Mapping[str, Any]) -> str | None:
    metadata = response.get("ResponseMetadata")
    if isinstance(metadata, Mapping):
        request_id = metadata.get("RequestId")
        if isinstance(request_id, str) and request_id:
            return request_id
        headers = metadata.get("HTTPHeaders")
        if isinstance(headers, Mapping):
            value = headers.get("x-amzn-requestid")
            return value if isinstance(value, str) and value else None
    return None


def _headers(response: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = response.get("ResponseMetadata")
    headers = metadata.get("HTTPHeaders") if isinstance(metadata, Mapping) else None
    return headers if isinstance(headers, Mapping) else {}


def error_response_id(exc: BaseException) -> str | None:
    """The request id of a botocore ``ClientError`` (its ``response`` dict), if any."""
    response = getattr(exc, "response", None)
    return _response_id(response) if isinstance(response, Mapping) else None


class _RaisingRaw(io.RawIOBase):
    """A body whose reads raise ``error`` again: what the caller would have seen."""

    def __init__(self, error: BaseException) -> None:
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise self._error


def _take_invoke_body(response: dict[str, Any]) -> bytes | None:
    """Read InvokeModel's ``body`` and put an equivalent, unread StreamingBody back."""
    from botocore.response import StreamingBody

    body = response.get("body")
    if body is None or not hasattr(body, "read"):
        return None
    try:
        data = body.read()
    except Exception as exc:
        response["body"] = StreamingBody(_RaisingRaw(exc), None)
        raise
    if not isinstance(data, bytes):
        data = bytes(data)
    response["body"] = StreamingBody(io.BytesIO(data), len(data))
    return data


def finish_response(handle: paid_hooks.CallHandle, operation: str, model_id: Any,
                    response: Any) -> None:
    """Record a successful call from its parsed response. Never raises.

    Streams and InvokeModel bodies in ``response`` are replaced in place by equivalents.
    """
    if not handle.recording or handle.done:
        return
    model = normalize_model_id(model_id)
    response_id: str | None = None
    try:
        if not isinstance(response, dict):
            handle.usage_unknown("unreadable_response", response_model=model)
            return
        response_id = _response_id(response)
        if operation == "Converse":
            handle.finish(converse_usage(response.get("usage")), response_model=model,
                          response_id=response_id,
                          service_tier=service_tier(response.get("serviceTier")))
        elif operation == "InvokeModel":
            data = _take_invoke_body(response)
            handle.finish(invoke_body_usage(data or b"", _headers(response)),
                          response_model=model, response_id=response_id,
                          service_tier=service_tier(response.get("serviceTier")))
        elif operation in STREAMING:
            from paid_hooks_bedrock._stream import RecordingEventStream

            key = "stream" if operation == "ConverseStream" else "body"
            inner = response.get(key)
            if inner is None:
                handle.usage_unknown("not_reported", response_model=model,
                                     response_id=response_id)
                return
            usage = (ConverseStreamUsage() if operation == "ConverseStream"
                     else InvokeStreamUsage(service_tier(response.get("serviceTier"))))
            response[key] = RecordingEventStream(inner, handle, usage, response_model=model,
                                                 response_id=response_id)
        else:
            handle.usage_unknown("unsupported_operation", response_model=model,
                                 response_id=response_id)
    except Exception:
        log.warning("paid_hooks_bedrock: could not read a %s response", operation,
                    exc_info=True)
        handle.usage_unknown("unreadable_response", response_model=model,
                             response_id=response_id)


def record_call(operation: str, call: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any], endpoint_url: str | None) -> Any:
    """Call a client method (``call``) and record it; the response is returned as is."""
    try:
        handle = start(operation, kwargs, endpoint_url)
    except Exception:
        log.warning("paid_hooks_bedrock: could not start recording", exc_info=True)
        return call(*args, **kwargs)
    response = call_exclusive(
        handle, call, args, kwargs,
        on_error=lambda exc: handle.fail(exc, response_id=error_response_id(exc)))
    finish_response(handle, operation, kwargs.get("modelId"), response)
    return response
