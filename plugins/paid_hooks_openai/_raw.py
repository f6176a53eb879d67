"""Recording calls made through ``.with_raw_response`` / ``.with_streaming_response``.

These views return the SDK's ``LegacyAPIResponse`` / ``APIResponse`` /
``AsyncAPIResponse`` instead of the parsed object; the caller parses it (``.parse()``) or
reads the bytes. The request is never modified (no ``include_usage`` is added) and
nothing is hidden: the caller reads the body as the API sent it.

* A non-streamed legacy raw response has its body already read: it is parsed at once
  (the SDK caches the parse, so the caller's ``parse()`` returns the same object).
* Otherwise the response's body readers (``parse``, ``read``, ``json``, ``text``) are
  observed (instance attributes; the class is untouched). A parsed result or a read JSON
  body is recorded. A parsed ``Stream`` / ``AsyncStream`` is returned as a recording
  :class:`~paid_hooks_openai._streams.PaidStream` (the same one on every ``parse()``), so
  the call is recorded when that stream ends. This is how the OpenAI Agents SDK streams
  Responses calls.
* If the caller never reads the body, the call is recorded when the HTTP response is
  closed (or the response object is collected) as
  ``usage_unknown("raw_response_not_inspected")``.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import weakref
from collections.abc import Mapping
from typing import Any

from openai import AsyncStream, Stream

import paid_hooks
from paid_hooks_openai._operations import Operation
from paid_hooks_openai._streams import finish_with, wrap_stream

__all__ = ["watch_raw_response"]

log = logging.getLogger("paid_hooks.openai")


class _RawCall:
    """The recording state of one raw-response call."""

    __slots__ = ("__weakref__", "delegated", "handle", "kwargs", "operation", "parsing",
                 "stream")

    def __init__(self, handle: paid_hooks.CallHandle, operation: Operation,
                 kwargs: Mapping[str, Any]) -> None:
        self.handle = handle
        self.operation = operation
        self.kwargs = kwargs
        self.delegated = False
        """A recording stream took over: the response's close is its business now."""
        self.stream: tuple[Any, Any] | None = None
        """The SDK stream ``parse()`` returned and its recording twin."""
        self.parsing = False
        """True while the SDK reads the body (which closes the response: that is normal)."""

    def parsed(self, value: Any) -> Any:
        """What the caller's ``parse()`` returns, recording along the way."""
        try:
            if isinstance(value, Stream | AsyncStream):
                if self.stream is not None and self.stream[0] is value:
                    return self.stream[1]
                if self.handle.done or self.operation.stream is None:
                    if not self.handle.done:
                        self.handle.usage_unknown("stream_not_inspected")
                    return value
                wrapped = wrap_stream(value, self.handle,
                                      self.operation.stream(False))
                self.delegated = True
                self.stream = (value, wrapped)
                return wrapped
            if not self.handle.done:
                finish_with(self.handle, self.operation.read(value, self.kwargs))
        except Exception:
            log.debug("paid_hooks: could not read a raw OpenAI response", exc_info=True)
            if not self.handle.done:
                self.handle.usage_unknown("unreadable_response")
        return value

    def closed(self, http_response: Any) -> None:
        """The HTTP response closed, or the response object went away, unparsed."""
        if self.delegated or self.parsing or self.handle.done:
            return
        try:
            if not self.kwargs.get("stream") and http_response is not None:
                body = json.loads(http_response.content)
                finish_with(self.handle, self.operation.read(body, self.kwargs))
                return
        except Exception:
            log.debug("paid_hooks: raw OpenAI response body not readable", exc_info=True)
        self.handle.usage_unknown("raw_response_not_inspected")


_READERS = ("parse", "read", "json", "text")
"""Methods that read the body; reading it closes the HTTP response, which is not early."""


def _observe_readers(result: Any, call: _RawCall, http_response: Any) -> None:
    """Wrap the body-reading methods on the instance (properties are left alone)."""
    for name in _READERS:
        if not inspect.isfunction(inspect.getattr_static(type(result), name, None)):
            continue
        original = getattr(result, name)
        setattr(result, name, _reader(name, original, call, http_response))


def _reader(name: str, original: Any, call: _RawCall, http_response: Any) -> Any:
    def after(value: Any) -> Any:
        if name == "parse":
            return call.parsed(value)
        call.closed(http_response)  # the body is read now: record from it
        return value

    if inspect.iscoroutinefunction(original):
        @functools.wraps(original)
        async def read_async(*args: Any, **kwargs: Any) -> Any:
            call.parsing = True
            try:
                value = await original(*args, **kwargs)
            finally:
                call.parsing = False
            return after(value)

        return read_async

    @functools.wraps(original)
    def read(*args: Any, **kwargs: Any) -> Any:
        call.parsing = True
        try:
            value = original(*args, **kwargs)
        finally:
            call.parsing = False
        return after(value)

    return read


def _observe_close(http_response: Any, call: _RawCall) -> None:
    """Hook both ``close`` and ``aclose`` of the HTTP response (whichever the client uses)."""
    ref = weakref.ref(call)

    def notify() -> None:
        target = ref()
        if target is not None:
            target.closed(http_response)

    original_close = getattr(http_response, "close", None)
    if callable(original_close):
        @functools.wraps(original_close)
        def close() -> None:
            try:
                original_close()
            finally:
                notify()

        http_response.close = close
    original_aclose = getattr(http_response, "aclose", None)
    if inspect.iscoroutinefunction(original_aclose):
        @functools.wraps(original_aclose)
        async def aclose() -> None:
            try:
                await original_aclose()
            finally:
                notify()

        http_response.aclose = aclose


def watch_raw_response(handle: paid_hooks.CallHandle, result: Any, kwargs: Mapping[str, Any],
                       operation: Operation, mode: str) -> None:
    """Record the call behind a raw response ``result`` (``mode``: ``"true"`` / ``"stream"``)."""
    call = _RawCall(handle, operation, kwargs)
    if mode == "true" and not kwargs.get("stream"):
        call.parsed(result.parse())  # body already read; the SDK caches this parse
        return
    http_response = getattr(result, "http_response", None)
    _observe_readers(result, call, http_response)
    if http_response is not None:
        _observe_close(http_response, call)
    weakref.finalize(result, call.closed, None)
