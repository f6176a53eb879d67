"""``PaidAnthropic`` / ``PaidAsyncAnthropic``: wrappers that behave exactly like the client.

Only ``messages.create``, ``messages.stream``, ``messages.parse`` and their
``beta.messages`` twins are intercepted; every other attribute is the wrapped client's
own, and every return value is the SDK's own object.
"""

from __future__ import annotations

from typing import Any

from paid_hooks_anthropic._calls import record_create, record_create_async, record_stream

__all__ = ["PaidAnthropic", "PaidAsyncAnthropic"]


class _Proxy:
    """Passes every attribute through to the wrapped object unless overridden."""

    __slots__ = ("_paid_wrapped",)

    def __init__(self, wrapped: Any) -> None:
        object.__setattr__(self, "_paid_wrapped", wrapped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._paid_wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._paid_wrapped, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._paid_wrapped)) | set(super().__dir__()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._paid_wrapped!r})"


class _Messages(_Proxy):
    """``client.messages`` or ``client.beta.messages`` of a sync client."""

    __slots__ = ()

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return record_create(self._paid_wrapped.create, args, kwargs, self._paid_wrapped)

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return record_create(self._paid_wrapped.parse, args, kwargs, self._paid_wrapped)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return record_stream(self._paid_wrapped.stream, args, kwargs, self._paid_wrapped)


class _AsyncMessages(_Proxy):
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


class _Beta(_Proxy):
    __slots__ = ()

    @property
    def messages(self) -> _Messages:
        return _Messages(self._paid_wrapped.messages)


class _AsyncBeta(_Proxy):
    __slots__ = ()

    @property
    def messages(self) -> _AsyncMessages:
        return _AsyncMessages(self._paid_wrapped.messages)


class PaidAnthropic(_Proxy):
    """Wraps an ``anthropic.Anthropic`` client; every other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def messages(self) -> _Messages:
        return _Messages(self._paid_wrapped.messages)

    @property
    def beta(self) -> _Beta:
        return _Beta(self._paid_wrapped.beta)

    def with_options(self, *args: Any, **kwargs: Any) -> PaidAnthropic:
        return PaidAnthropic(self._paid_wrapped.with_options(*args, **kwargs))

    def copy(self, *args: Any, **kwargs: Any) -> PaidAnthropic:
        return PaidAnthropic(self._paid_wrapped.copy(*args, **kwargs))

    def __enter__(self) -> PaidAnthropic:
        self._paid_wrapped.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._paid_wrapped.__exit__(*exc)


class PaidAsyncAnthropic(_Proxy):
    """Wraps an ``anthropic.AsyncAnthropic`` client; every other attribute passes through."""

    __slots__ = ()

    @property
    def messages(self) -> _AsyncMessages:
        return _AsyncMessages(self._paid_wrapped.messages)

    @property
    def beta(self) -> _AsyncBeta:
        return _AsyncBeta(self._paid_wrapped.beta)

    def with_options(self, *args: Any, **kwargs: Any) -> PaidAsyncAnthropic:
        return PaidAsyncAnthropic(self._paid_wrapped.with_options(*args, **kwargs))

    def copy(self, *args: Any, **kwargs: Any) -> PaidAsyncAnthropic:
        return PaidAsyncAnthropic(self._paid_wrapped.copy(*args, **kwargs))

    async def __aenter__(self) -> PaidAsyncAnthropic:
        await self._paid_wrapped.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._paid_wrapped.__aexit__(*exc)
