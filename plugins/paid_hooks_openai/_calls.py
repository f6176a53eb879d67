"""Recording one OpenAI SDK method call, shared by the wrapper and the patches.

:func:`record_sync` / :func:`record_async` run the SDK method inside
``handle.exclusive()`` and record the result. They change the request in one case only:
a streamed chat completion without ``stream_options.include_usage`` gets
``include_usage: true`` added (see :func:`prepare_request`) so that the stream reports its
usage; the extra usage-only chunk this produces is then hidden from the caller.

When another layer is already recording the call (``handle.recording`` is False) the SDK
method is called with the caller's arguments, untouched, and its result returned as is.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any

from openai import AsyncStream, Stream

import paid_hooks
from paid_hooks.plugin_kit import call_exclusive, call_exclusive_async
from paid_hooks_openai._operations import Operation
from paid_hooks_openai._raw import watch_raw_response
from paid_hooks_openai._readers import Reader
from paid_hooks_openai._streams import finish_with, wrap_stream
from paid_hooks_openai._usage import PROVIDER

__all__ = ["CAPTURED_BY", "STREAM_USAGE_ENV", "prepare_request", "reading_of", "record_async",
           "record_sync"]

log = logging.getLogger("paid_hooks.openai")

CAPTURED_BY = "openai"
STREAM_USAGE_ENV = "PAID_HOOKS_OPENAI_STREAM_USAGE"
"""Set to ``0`` / ``false`` / ``off`` to never add ``stream_options.include_usage``."""

_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"


_STREAMS = (Stream, AsyncStream)
_start_call = paid_hooks.start_call


def _raw_mode(kwargs: Mapping[str, Any]) -> str | None:
    """``"true"`` for ``.with_raw_response``, ``"stream"`` for ``.with_streaming_response``."""
    headers = kwargs.get("extra_headers")
    if headers is None:
        return None
    if type(headers) is dict or isinstance(headers, Mapping):
        value = headers.get(_RAW_RESPONSE_HEADER)
        return str(value) if value is not None else None
    return None


def _injection_enabled() -> bool:
    return os.environ.get(STREAM_USAGE_ENV, "1").strip().lower() not in ("0", "false", "off",
                                                                         "no")


def prepare_request(kwargs: dict[str, Any], operation: Operation) -> tuple[dict[str, Any], bool]:
    """The arguments to send, and whether to hide the usage-only chunk from the caller.

    For a streamed chat completion whose ``stream_options`` lacks a true ``include_usage``
    (absent, ``None``, or a mapping without it), a copy of the arguments is returned with
    ``stream_options = {**caller's options, "include_usage": True}`` and ``hide=True``.
    The caller's own dicts are never mutated. Raw-response calls are left alone (the caller
    parses the body itself).
    """
    if not (operation.injects_stream_usage and kwargs.get("stream") is True):
        return kwargs, False
    if _raw_mode(kwargs) is not None:
        return kwargs, False
    options: Any = kwargs.get("stream_options")
    is_mapping = options is not None and (type(options) is dict or isinstance(options, Mapping))
    if is_mapping and options.get("include_usage"):
        return kwargs, False  # the caller asked: nothing to add, nothing to hide
    if not _injection_enabled():
        return kwargs, False
    if is_mapping:
        base = dict(options)
    elif options is None or not options:  # absent, None, or the SDK's falsy ``omit``
        base = {}
    else:
        return kwargs, False  # something we do not understand: leave it alone
    return {**kwargs, "stream_options": {**base, "include_usage": True}}, True


def _prepare(kwargs: dict[str, Any], operation: Operation) -> tuple[dict[str, Any], bool]:
    try:
        return prepare_request(kwargs, operation)
    except Exception:
        log.debug("paid_hooks: could not prepare an OpenAI request", exc_info=True)
        return kwargs, False


_NO_REQUEST: Mapping[str, Any] = MappingProxyType({})


def reading_of(source: tuple[Reader, Any]) -> paid_hooks.CallReading:
    """``read(result)`` as a :class:`paid_hooks.CallReading` (on the pipeline worker, for an
    operation that ``reads_later``: its reader reads the result only, never the request,
    and never reports a failure)."""
    read, result = source
    reading = read(result, _NO_REQUEST)
    return paid_hooks.CallReading(reading.usage, reading.response_model, reading.response_id,
                                  reading.service_tier, reading.unknown_reason)


def _record_result(handle: paid_hooks.CallHandle, result: Any, kwargs: Mapping[str, Any],
                   operation: Operation, hide: bool) -> Any:
    """Record a returned result (wrapping a stream); returns what the caller receives."""
    try:
        raw = None if kwargs.get("extra_headers") is None else _raw_mode(kwargs)
        if raw is not None:
            watch_raw_response(handle, result, kwargs, operation, raw)
        elif isinstance(result, _STREAMS):
            if operation.stream is None:
                handle.usage_unknown("stream_not_inspected")
                return result
            return wrap_stream(result, handle, operation.stream(hide))
        elif operation.reads_later:  # read on the pipeline worker, off the caller's thread
            handle.finish_later(reading_of, (operation.read, result))
        else:
            finish_with(handle, operation.read(result, kwargs))
    except Exception:
        log.debug("paid_hooks: could not read an OpenAI response", exc_info=True)
        handle.usage_unknown("unreadable_response")
    return result


# ``record_sync`` / ``record_async`` run on every recorded call: the start of the call is
# written out here (``start_call`` called directly, the request only handed to
# ``_prepare`` when a streamed chat request may need ``include_usage``), which saves a
# call layer or two per AI call.


def record_sync(call: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                operation: Operation) -> Any:
    """Call ``call(*args, **kwargs)`` (sync) and record it; returns the SDK's result."""
    model = kwargs.get("model")
    stream = kwargs.get("stream")
    handle = _start_call(provider=PROVIDER, operation=operation.name,
                         request_model=model if isinstance(model, str) else None,
                         captured_by=CAPTURED_BY, streaming=bool(stream))
    if not handle.recording:
        return call(*args, **kwargs)
    send, hide = kwargs, False
    if stream is True and operation.injects_stream_usage:
        options = kwargs.get("stream_options")
        if not (type(options) is dict and options.get("include_usage")):
            send, hide = _prepare(kwargs, operation)
    result = call_exclusive(handle, call, args, send)
    return _record_result(handle, result, kwargs, operation, hide)


async def record_async(call: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                       kwargs: dict[str, Any], operation: Operation) -> Any:
    """Await ``call(*args, **kwargs)`` and record it; returns the SDK's result."""
    model = kwargs.get("model")
    stream = kwargs.get("stream")
    handle = _start_call(provider=PROVIDER, operation=operation.name,
                         request_model=model if isinstance(model, str) else None,
                         captured_by=CAPTURED_BY, streaming=bool(stream))
    if not handle.recording:
        return await call(*args, **kwargs)
    send, hide = kwargs, False
    if stream is True and operation.injects_stream_usage:
        options = kwargs.get("stream_options")
        if not (type(options) is dict and options.get("include_usage")):
            send, hide = _prepare(kwargs, operation)
    result = await call_exclusive_async(handle, call, args, send)
    return _record_result(handle, result, kwargs, operation, hide)
