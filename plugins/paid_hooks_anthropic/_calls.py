"""Recording one Anthropic SDK method call; shared by the wrapper and the patches.

* ``create`` / ``parse`` (sync and async): the call runs inside ``handle.exclusive()``;
  a ``Message`` is read at once, a ``Stream`` (``stream=True``) is observed in place
  (:mod:`paid_hooks_anthropic._streams`) and recorded when it ends.
* ``stream(...)`` returns the SDK's ``MessageStreamManager`` untouched except for its
  request callable, which is wrapped so that the call is recorded when the manager is
  entered (that is when the request is made).

When another layer already records the call (the wrapper around a patched client), the
inner layer's handle is inactive and the call passes straight through: one record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any

from anthropic import AsyncStream, Stream

import paid_hooks
from paid_hooks.plugin_kit import call_exclusive, call_exclusive_async, field_reader, has_attribute
from paid_hooks_anthropic._streams import observe_async_stream, observe_stream
from paid_hooks_anthropic._usage import PROVIDER, usage_and_tier

__all__ = [
    "CAPTURED_BY",
    "observe_manager",
    "record_create",
    "record_create_async",
    "record_stream",
]

log = logging.getLogger("paid_hooks.anthropic")

CAPTURED_BY = "anthropic"
OPERATION = "chat"


_last_host: tuple[Any, str | None] = (None, None)
"""The last base URL seen and its host (an ``httpx.URL`` is immutable)."""


def _host(resource: Any) -> str | None:
    global _last_host
    try:
        url = resource._client.base_url
        last = _last_host
        if last[0] is url:
            return last[1]
        host = url.host
        found = str(host) if host else None
        _last_host = (url, found)
        return found
    except Exception:
        return None


def _start(model: Any, host: str | None, *, streaming: bool) -> paid_hooks.CallHandle:
    return paid_hooks.start_call(
        provider=PROVIDER,
        operation=OPERATION,
        request_model=model if isinstance(model, str) else None,
        captured_by=CAPTURED_BY,
        streaming=streaming,
        server_address=host,
    )


def _is_raw_response(result: Any) -> bool:
    """``with_raw_response`` / ``with_streaming_response`` results: the body is not ours to read."""
    return has_attribute(result, "http_response") and has_attribute(result, "parse")


_MESSAGE = field_reader("usage", "model", "id")


def _message_classes() -> frozenset[type]:
    """The SDK's ``Message`` classes: a result of one of these is neither a stream nor a
    raw response, so it is read without checking for those first."""
    classes: set[type] = set()
    try:
        from anthropic.types import Message

        classes.add(Message)
        from anthropic.types.beta import BetaMessage

        classes.add(BetaMessage)
    except ImportError:
        pass
    return frozenset(classes)


_MESSAGES = _message_classes()


def _finish_message(handle: paid_hooks.CallHandle, message: Any) -> None:
    usage, model, response_id = _MESSAGE(message)
    normalised, tier = usage_and_tier(usage)
    handle.finish(normalised, response_model=model, response_id=response_id, service_tier=tier)


def _record_result(handle: paid_hooks.CallHandle, result: Any) -> None:
    """Record a returned ``Message``, or observe a returned stream. Never raises."""
    try:
        if type(result) in _MESSAGES:
            _finish_message(handle, result)
        elif isinstance(result, Stream):
            observe_stream(result, handle)
        elif isinstance(result, AsyncStream):
            observe_async_stream(result, handle)
        elif _is_raw_response(result):
            handle.usage_unknown("raw_response")
        else:
            _finish_message(handle, result)
    except Exception:
        log.warning("paid_hooks: could not read an anthropic response", exc_info=True)
        handle.usage_unknown("unreadable_response")


def record_create(create: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                  resource: Any) -> Any:
    """Call ``create`` (or ``parse``) and record it; returns exactly what the SDK returned."""
    handle = _start(kwargs.get("model"), _host(resource), streaming=bool(kwargs.get("stream")))
    if not handle.recording:
        return create(*args, **kwargs)
    with handle.exclusive():  # plugin_kit.call_exclusive, inlined: one call less per call
        try:
            result = create(*args, **kwargs)
        except BaseException as exc:
            handle.fail(exc)
            raise
    _record_result(handle, result)
    return result


async def record_create_async(create: Callable[..., Awaitable[Any]], args: tuple[Any, ...],
                              kwargs: dict[str, Any], resource: Any) -> Any:
    """Await ``create`` (or ``parse``) and record it; returns exactly what the SDK returned."""
    handle = _start(kwargs.get("model"), _host(resource), streaming=bool(kwargs.get("stream")))
    if not handle.recording:
        return await create(*args, **kwargs)
    with handle.exclusive():  # plugin_kit.call_exclusive_async, inlined: one coroutine less
        try:
            result = await create(*args, **kwargs)
        except BaseException as exc:
            handle.fail(exc)
            raise
    _record_result(handle, result)
    return result


def _observed_request(request: Callable[[], Any], model: Any,
                      host: str | None) -> Callable[[], Any]:
    def api_request() -> Any:
        handle = _start(model, host, streaming=True)
        if not handle.recording:
            return request()
        raw_stream = call_exclusive(handle, request, (), {})
        _record_result(handle, raw_stream)
        return raw_stream

    return api_request


class _ObservedAsyncRequest:
    """Stands in for the async manager's pending request (an awaitable, awaited once).

    A plain awaitable rather than a coroutine: a manager that is never entered then
    warns about nothing more than the SDK's own unawaited request.
    """

    __slots__ = ("_host", "_model", "_request")

    def __init__(self, request: Awaitable[Any], model: Any, host: str | None) -> None:
        self._request = request
        self._model = model
        self._host = host

    def __await__(self) -> Generator[Any, None, Any]:
        return self._run().__await__()

    def _pending(self) -> Awaitable[Any]:
        return self._request

    async def _run(self) -> Any:
        handle = _start(self._model, self._host, streaming=True)
        if not handle.recording:
            return await self._request
        raw_stream = await call_exclusive_async(handle, self._pending, (), {})
        _record_result(handle, raw_stream)
        return raw_stream


def observe_manager(manager: Any, model: Any, host: str | None) -> None:
    """Make a ``(Beta)(Async)MessageStreamManager`` record its request. Never raises.

    The manager keeps its pending request in a name-mangled attribute
    (``_MessageStreamManager__api_request`` and the like); only that attribute of this
    one manager is replaced.
    """
    try:
        state = vars(manager)
        key = next(k for k in state if k.endswith("__api_request"))
        request = state[key]
        if callable(request):
            state[key] = _observed_request(request, model, host)
        elif hasattr(request, "__await__"):
            state[key] = _ObservedAsyncRequest(request, model, host)
        else:
            raise TypeError(f"unexpected stream request {type(request)!r}")
    except Exception:
        log.warning("paid_hooks: cannot observe this anthropic stream manager; its call "
                    "will not be recorded", exc_info=True)


def record_stream(stream: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                  resource: Any) -> Any:
    """Call ``messages.stream(...)`` and return its manager, set up to record the call."""
    manager = stream(*args, **kwargs)
    observe_manager(manager, kwargs.get("model"), _host(resource))
    return manager
