"""``PaidTransport`` / ``PaidAsyncTransport``: a transport wrapper, built per module.

``httpx.Client(transport=PaidTransport())`` records every AI call the client sends, like
the event hooks, and in addition records a request that got no response at all: a
connect-phase error (nothing reached the provider) as ``fail`` (no charge), any other
(read timeout, cancellation) as ``usage_unknown("no_response")`` because the provider
may have billed work it did.

Caveat (from httpx itself): passing ``transport=`` turns off the environment proxies
(``HTTP(S)_PROXY``) and the client's ``limits=``; configure the inner transport instead
(``PaidTransport(httpx.HTTPTransport(proxy=..., limits=...))``), or prefer
:func:`paid_hooks_httpx.instrument_client`, which changes nothing about the transport.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from paid_hooks_httpx._hooks import MARK
from paid_hooks_httpx._per_module import per_module
from paid_hooks_httpx._recorder import PendingCall, begin
from paid_hooks_httpx._streams import tee_classes

__all__ = ["transport_classes"]


_NOT_SENT = ("ConnectError", "ConnectTimeout", "PoolTimeout", "UnsupportedProtocol",
             "LocalProtocolError", "ProxyError")
"""httpx exceptions raised before the request reached the server: nothing was billed."""


def _no_response(pending: PendingCall, exc: BaseException, mod: ModuleType) -> None:
    not_sent = tuple(getattr(mod, name) for name in _NOT_SENT if hasattr(mod, name))
    if isinstance(exc, not_sent):
        pending.transport_error(exc)
    else:
        pending.handle.usage_unknown("no_response")


def _unmark(request: Any) -> None:
    """Remove the mark if it is there (``delattr``: reading ``__dict__`` builds a dict)."""
    try:  # noqa: SIM105 (a bare try costs nothing; suppress() does)
        delattr(request, MARK)
    except AttributeError:
        pass


@per_module
def transport_classes(mod: ModuleType) -> tuple[type, type]:
    """``(PaidTransport, PaidAsyncTransport)`` for ``httpx`` or ``httpx2`` (built once)."""
    sync_tee, async_tee = tee_classes(mod)

    class PaidTransport(mod.BaseTransport):  # type: ignore[misc, name-defined]
        """Wraps ``inner`` (default ``HTTPTransport()``) and records every AI call through it.

        ``provider`` overrides the ``gen_ai.provider.name`` inferred from host and path.
        """

        def __init__(self, inner: Any = None, provider: str | None = None) -> None:
            self.inner = inner if inner is not None else mod.HTTPTransport()
            self.provider = provider

        def handle_request(self, request: Any) -> Any:
            if hasattr(request, MARK):  # an event hook or an outer PaidTransport has it
                return self.inner.handle_request(request)
            pending = begin(request, self.provider)
            if pending is None:
                return self.inner.handle_request(request)
            setattr(request, MARK, None)
            try:
                response = self.inner.handle_request(request)
            except BaseException as exc:
                _no_response(pending, exc, mod)
                raise
            finally:
                _unmark(request)
            tap = pending.observe(response.status_code, response.headers)
            if tap is not None:
                response.stream = sync_tee(response.stream, tap)
            return response

        def close(self) -> None:
            self.inner.close()

    class PaidAsyncTransport(mod.AsyncBaseTransport):  # type: ignore[misc, name-defined]
        """Async twin of ``PaidTransport`` (default inner: ``AsyncHTTPTransport()``)."""

        def __init__(self, inner: Any = None, provider: str | None = None) -> None:
            self.inner = inner if inner is not None else mod.AsyncHTTPTransport()
            self.provider = provider

        async def handle_async_request(self, request: Any) -> Any:
            if hasattr(request, MARK):
                return await self.inner.handle_async_request(request)
            pending = begin(request, self.provider)
            if pending is None:
                return await self.inner.handle_async_request(request)
            setattr(request, MARK, None)
            try:
                response = await self.inner.handle_async_request(request)
            except BaseException as exc:
                _no_response(pending, exc, mod)
                raise
            finally:
                _unmark(request)
            tap = pending.observe(response.status_code, response.headers)
            if tap is not None:
                response.stream = async_tee(response.stream, tap)
            return response

        async def aclose(self) -> None:
            await self.inner.aclose()

    for cls in (PaidTransport, PaidAsyncTransport):
        cls.__module__ = "paid_hooks_httpx"
    return PaidTransport, PaidAsyncTransport

