"""``PaidAnthropic`` / ``PaidAsyncAnthropic``: wrappers that behave exactly like the client.

Only ``messages.create``, ``messages.stream``, ``messages.parse`` and their
``beta.messages`` twins are intercepted; every other attribute is the wrapped client's
own, and every return value is the SDK's own object.
"""

from __future__ import annotations

from typing import Any

from paid_hooks.plugin_kit import ClientProxy, SdkClientProxy
from paid_hooks_anthropic._calls import record_create, record_create_async, record_stream

__all__ = ["PaidAnthropic", "PaidAsyncAnthropic"]


class _Messages(ClientProxy):
    """``client.messages`` or ``client.beta.messages`` of a sync client."""

    __slots__ = ()

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return record_create(self._paid_wrapped.create, args, kwargs, self._paid_wrapped)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return record_create(self._paid_wrapped.parse, args, kwargs, self._paid_wrapped)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return record_stream(self._paid_wrapped.stream, args, kwargs, self._paid_wrapped)


class _AsyncMessages(ClientProxy):
    """``client.messages`` or ``client.beta.messages`` of an async client."""

    __slots__ = ()

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await record_create_async(self._paid_wrapped.create, args, kwargs,
                                         self._paid_wrapped)

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return await record_create_async(self._paid_wrapped.parse, args, kwargs,
                                         self._paid_wrapped)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        # Not async in the SDK either: it returns an AsyncMessageStreamManager.
        return record_stream(self._paid_wrapped.stream, args, kwargs, self._paid_wrapped)


def _proxy(owner: ClientProxy, slot: str, resource: Any, cls: type[ClientProxy]) -> Any:
    """``cls(resource)``, kept in ``owner``'s ``slot`` and handed out again while the SDK
    returns the same ``resource`` (its resources are cached properties), so a call does
    not build a proxy anew."""
    cached = getattr(owner, slot, None)
    if cached is not None and cached._paid_wrapped is resource:
        return cached
    proxy = cls(resource)
    object.__setattr__(owner, slot, proxy)
    return proxy


class _Beta(ClientProxy):
    __slots__ = ("_paid_messages",)

    @property
    def messages(self) -> _Messages:
        return _proxy(self, "_paid_messages", self._paid_wrapped.messages,  # type: ignore[no-any-return]
                      _Messages)


class _AsyncBeta(ClientProxy):
    __slots__ = ("_paid_messages",)

    @property
    def messages(self) -> _AsyncMessages:
        return _proxy(self, "_paid_messages", self._paid_wrapped.messages,  # type: ignore[no-any-return]
                      _AsyncMessages)


class PaidAnthropic(SdkClientProxy):
    """Wraps an ``anthropic.Anthropic`` client; every other attribute passes through unchanged."""

    __slots__ = ("_paid_beta", "_paid_messages")

    @property
    def messages(self) -> _Messages:
        return _proxy(self, "_paid_messages", self._paid_wrapped.messages,  # type: ignore[no-any-return]
                      _Messages)

    @property
    def beta(self) -> _Beta:
        return _proxy(self, "_paid_beta", self._paid_wrapped.beta, _Beta)  # type: ignore[no-any-return]

    def __enter__(self) -> PaidAnthropic:
        self._paid_wrapped.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._paid_wrapped.__exit__(*exc)


class PaidAsyncAnthropic(SdkClientProxy):
    """Wraps an ``anthropic.AsyncAnthropic`` client; every other attribute passes through."""

    __slots__ = ("_paid_beta", "_paid_messages")

    @property
    def messages(self) -> _AsyncMessages:
        return _proxy(self, "_paid_messages", self._paid_wrapped.messages,  # type: ignore[no-any-return]
                      _AsyncMessages)

    @property
    def beta(self) -> _AsyncBeta:
        return _proxy(self, "_paid_beta", self._paid_wrapped.beta, _AsyncBeta)  # type: ignore[no-any-return]

    async def __aenter__(self) -> PaidAsyncAnthropic:
        await self._paid_wrapped.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._paid_wrapped.__aexit__(*exc)
