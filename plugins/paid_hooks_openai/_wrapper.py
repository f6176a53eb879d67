"""``PaidOpenAI`` / ``PaidAsyncOpenAI``: wrappers that behave exactly like the client."""

from __future__ import annotations

from typing import Any

from paid_hooks_openai._calls import record_chat_create, record_chat_create_async

__all__ = ["PaidAsyncOpenAI", "PaidOpenAI"]


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


class _Completions(_Proxy):
    __slots__ = ()

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return record_chat_create(self._paid_wrapped.create, args, kwargs)


class _AsyncCompletions(_Proxy):
    __slots__ = ()

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        return await record_chat_create_async(self._paid_wrapped.create, args, kwargs)


class _Chat(_Proxy):
    __slots__ = ()

    @property
    def completions(self) -> _Completions:
        return _Completions(self._paid_wrapped.completions)


class _AsyncChat(_Proxy):
    __slots__ = ()

    @property
    def completions(self) -> _AsyncCompletions:
        return _AsyncCompletions(self._paid_wrapped.completions)


class PaidOpenAI(_Proxy):
    """Wraps an ``openai.OpenAI`` client; every other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def chat(self) -> _Chat:
        return _Chat(self._paid_wrapped.chat)

    def with_options(self, *args: Any, **kwargs: Any) -> PaidOpenAI:
        return PaidOpenAI(self._paid_wrapped.with_options(*args, **kwargs))


class PaidAsyncOpenAI(_Proxy):
    """Wraps an ``openai.AsyncOpenAI`` client; every other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def chat(self) -> _AsyncChat:
        return _AsyncChat(self._paid_wrapped.chat)

    def with_options(self, *args: Any, **kwargs: Any) -> PaidAsyncOpenAI:
        return PaidAsyncOpenAI(self._paid_wrapped.with_options(*args, **kwargs))
