"""Recording one Mistral SDK method call; shared by the wrapper and the patches.

Each ``record_*`` function runs the SDK method inside ``handle.exclusive()`` (so lower
layers such as an HTTP hook stand down), hands the SDK's exception back unchanged, and
records the call exactly once. Reading the response never raises into the caller: an
unreadable response is recorded as ``usage_unknown``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import as_str, call_exclusive, call_exclusive_async
from paid_hooks_mistral._stream import RecordedAsyncStream, RecordedStream
from paid_hooks_mistral._usage import PROVIDER, chat_usage, get, ocr_usage

__all__ = [
    "CAPTURED_BY",
    "CHAT",
    "EMBEDDINGS",
    "OCR",
    "Operation",
    "record_async",
    "record_stream",
    "record_stream_async",
    "record_sync",
]

log = logging.getLogger("paid_hooks.mistral")

CAPTURED_BY = "mistral"


@dataclass(frozen=True)
class Operation:
    """How to name one SDK method's calls and read usage from its response."""

    name: str
    """``gen_ai.operation.name``."""
    read: Callable[[Any, dict[str, Any]], paid_hooks.Usage | None]
    """``(response, call kwargs) -> Usage``."""


def _read_chat(response: Any, kwargs: dict[str, Any]) -> paid_hooks.Usage | None:
    return chat_usage(get(response, "usage"))


def _read_ocr(response: Any, kwargs: dict[str, Any]) -> paid_hooks.Usage | None:
    annotated = any(kwargs.get(k) not in (None, "") and type(kwargs.get(k)).__name__ != "Unset"
                    for k in ("document_annotation_format", "bbox_annotation_format"))
    return ocr_usage(get(response, "usage_info"), annotated=annotated)


CHAT = Operation("chat", _read_chat)
EMBEDDINGS = Operation("embeddings", _read_chat)
OCR = Operation("ocr", _read_ocr)


def _start(operation: str, kwargs: dict[str, Any], *, streaming: bool) -> paid_hooks.CallHandle:
    return paid_hooks.start_call(
        provider=PROVIDER,
        operation=operation,
        request_model=as_str(kwargs.get("model")),
        captured_by=CAPTURED_BY,
        streaming=streaming,
    )


def _failed(handle: paid_hooks.CallHandle) -> Callable[[BaseException], None]:
    """Records that the SDK raised. A 2xx status means the provider answered (and billed)."""

    def record(exc: BaseException) -> None:
        status = getattr(exc, "status_code", None)
        if isinstance(status, int) and 200 <= status < 300:
            handle.usage_unknown("unreadable_response")
        else:
            handle.fail(exc)

    return record


def _finish(handle: paid_hooks.CallHandle, op: Operation, response: Any,
            kwargs: dict[str, Any]) -> None:
    try:
        usage = op.read(response, kwargs)
        handle.finish(
            usage,
            response_model=as_str(get(response, "model")),
            response_id=as_str(get(response, "id")),
            service_tier=as_str(get(get(response, "usage"), "service_tier")),
        )
    except Exception:
        log.warning("paid_hooks: could not read a Mistral response", exc_info=True)
        handle.usage_unknown("unreadable_response")


def record_sync(method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                op: Operation) -> Any:
    """Call ``method`` and record its (non-streamed) response."""
    handle = _start(op.name, kwargs, streaming=bool(kwargs.get("stream")))
    if not handle.recording:
        return method(*args, **kwargs)
    response = call_exclusive(handle, method, args, kwargs, on_error=_failed(handle))
    _finish(handle, op, response, kwargs)
    return response


async def record_async(method: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                       kwargs: dict[str, Any], op: Operation) -> Any:
    """Await ``method`` and record its (non-streamed) response."""
    handle = _start(op.name, kwargs, streaming=bool(kwargs.get("stream")))
    if not handle.recording:
        return await method(*args, **kwargs)
    response = await call_exclusive_async(handle, method, args, kwargs, on_error=_failed(handle))
    _finish(handle, op, response, kwargs)
    return response


def record_stream(method: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    """Call ``chat.stream``; the returned stream records the call when usage arrives."""
    handle = _start("chat", kwargs, streaming=True)
    if not handle.recording:
        return method(*args, **kwargs)
    stream = call_exclusive(handle, method, args, kwargs, on_error=_failed(handle))
    return RecordedStream(stream, handle)


async def record_stream_async(method: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                              kwargs: dict[str, Any]) -> Any:
    """Await ``chat.stream_async``; the returned stream records the call."""
    handle = _start("chat", kwargs, streaming=True)
    if not handle.recording:
        return await method(*args, **kwargs)
    stream = await call_exclusive_async(handle, method, args, kwargs, on_error=_failed(handle))
    return RecordedAsyncStream(stream, handle)
