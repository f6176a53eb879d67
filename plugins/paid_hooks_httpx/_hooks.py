"""Event hooks: attaching the recorder to an existing httpx / httpx2 client.

A hooked client gets one request hook (appended: it runs last, right before the request
is sent, in the caller's thread or task) and one response hook (inserted first: it runs
when the headers arrive, before any other hook or the caller reads the body). The
request hook starts the call; the response hook swaps ``response.stream`` for a tee.

The request carries the pending call to the response hook in an attribute; the same
attribute tells a :class:`PaidTransport` below the hook that the call is already taken.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from types import ModuleType
from typing import Any

from paid_hooks_httpx._recorder import PendingCall, begin
from paid_hooks_httpx._streams import tee_classes

__all__ = ["MARK", "attach", "attach_auto", "client_kind", "detach", "detach_auto"]

log = logging.getLogger("paid_hooks_httpx")

MARK = "_paid_hooks_httpx_call"
"""Request attribute: the :class:`PendingCall` (or ``None``: decided, not recorded)."""

_lock = threading.Lock()
_auto_clients: weakref.WeakSet[Any] = weakref.WeakSet()


def client_kind(client: Any) -> tuple[ModuleType, bool] | None:
    """``(module, is_async)`` of an httpx or httpx2 client, else ``None``."""
    for name in ("httpx", "httpx2"):
        mod = sys.modules.get(name)
        if mod is None:
            continue
        if isinstance(client, mod.AsyncClient):
            return mod, True
        if isinstance(client, mod.Client):
            return mod, False
    return None


def on_request(hook: _Hook, request: Any) -> None:
    """Start recording (when the request is an AI call) and mark the request. Never raises.

    The sync hook's ``__call__`` itself (one frame less per request)."""
    try:
        setattr(request, MARK, begin(request, hook.provider))
    except Exception:
        log.warning("paid_hooks_httpx: request hook failed", exc_info=True)


def on_response(hook: _Hook, response: Any) -> None:
    """Swap ``response.stream`` for a tee when the request is being recorded. Never raises.

    The sync hook's ``__call__`` itself (one frame less per response)."""
    try:
        request = response.request
        # getattr/delattr, not ``request.__dict__.pop``: reading ``__dict__`` builds a dict
        # object CPython otherwise never makes for the request (one more object per call,
        # freed only by the cyclic garbage collector, as a Request is in reference cycles)
        try:
            pending = getattr(request, MARK)
        except AttributeError:  # our request hook did not see this request
            return
        delattr(request, MARK)
        if not isinstance(pending, PendingCall):
            return
        if response.is_stream_consumed:  # an earlier hook or the transport read the body
            _tap_read_body(pending, response)
            return
        tap = pending.observe(response.status_code, response.headers)
        if tap is None:
            return
        sync_tee, async_tee = tee_classes(hook.mod)
        response.stream = (async_tee if hook.is_async else sync_tee)(response.stream, tap)
    except Exception:
        log.warning("paid_hooks_httpx: response hook failed", exc_info=True)


def _tap_read_body(pending: PendingCall, response: Any) -> None:
    """Record from a body another hook already read (``response.content`` is decoded)."""
    try:
        content: bytes | None = response.content
    except Exception:  # read by iteration, not stored: the body is gone
        content = None
    pending.record_body(response.status_code, response.headers, content)


class _Hook:
    """Base of the hook callables; ``isinstance`` finds ours among a client's hooks."""

    __slots__ = ("is_async", "mod", "provider")

    def __init__(self, mod: ModuleType, is_async: bool, provider: str | None) -> None:
        self.mod = mod
        self.is_async = is_async
        self.provider = provider

    def __repr__(self) -> str:
        return f"<paid_hooks_httpx {type(self).__name__} provider={self.provider!r}>"


class RequestHook(_Hook):
    __slots__ = ()
    __call__ = on_request


class ResponseHook(_Hook):
    __slots__ = ()
    __call__ = on_response


class AsyncRequestHook(_Hook):
    __slots__ = ()

    async def __call__(self, request: Any) -> None:
        on_request(self, request)


class AsyncResponseHook(_Hook):
    __slots__ = ()

    async def __call__(self, response: Any) -> None:
        on_response(self, response)


def _ours(hooks: list[Any]) -> list[_Hook]:
    return [h for h in hooks if isinstance(h, _Hook)]


def attach(client: Any, provider: str | None = None, *, auto: bool = False) -> Any:
    """Hook ``client`` (idempotent). A second call only updates ``provider`` if one is given.

    Raises :class:`TypeError` if ``client`` is not an httpx/httpx2 ``Client``/``AsyncClient``.
    """
    kind = client_kind(client)
    if kind is None:
        raise TypeError("paid_hooks_httpx.instrument_client expects an httpx or httpx2 Client "
                        f"or AsyncClient, got {type(client).__qualname__}")
    mod, is_async = kind
    with _lock:
        hooks = client.event_hooks
        existing = _ours(hooks.get("request", []))
        if existing:
            if provider is not None:
                for hook in existing + _ours(hooks.get("response", [])):
                    hook.provider = provider
            if not auto:
                _auto_clients.discard(client)
            return client
        if is_async:
            request_hook: _Hook = AsyncRequestHook(mod, True, provider)
            response_hook: _Hook = AsyncResponseHook(mod, True, provider)
        else:
            request_hook = RequestHook(mod, False, provider)
            response_hook = ResponseHook(mod, False, provider)
        client.event_hooks = {
            "request": [*hooks.get("request", []), request_hook],
            "response": [response_hook, *hooks.get("response", [])],
        }
        if auto:
            _auto_clients.add(client)
    return client


def detach(client: Any) -> Any:
    """Remove this plugin's hooks from ``client`` (idempotent); other hooks stay."""
    if client_kind(client) is None:
        raise TypeError("paid_hooks_httpx.uninstrument_client expects an httpx or httpx2 "
                        f"client, got {type(client).__qualname__}")
    with _lock:
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [h for h in hooks.get("request", []) if not isinstance(h, _Hook)],
            "response": [h for h in hooks.get("response", []) if not isinstance(h, _Hook)],
        }
        _auto_clients.discard(client)
    return client


def attach_auto(client: Any) -> None:
    """Hook a client created while :func:`paid_hooks_httpx.instrument` is on. Never raises."""
    try:
        attach(client, None, auto=True)
    except Exception:
        log.warning("paid_hooks_httpx: could not hook a new client", exc_info=True)


def detach_auto() -> None:
    """Unhook every client that was hooked automatically (not those hooked explicitly)."""
    for client in list(_auto_clients):
        try:
            detach(client)
        except Exception:
            log.warning("paid_hooks_httpx: could not unhook a client", exc_info=True)
