"""``PaidGemini``: a wrapper that behaves exactly like the ``genai.Client`` it wraps."""

from __future__ import annotations

from typing import Any

from paid_hooks_gemini._models import AsyncModelsRecording, ModelsRecording, recording_view

__all__ = ["PaidAsyncGemini", "PaidGemini"]


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


class PaidAsyncGemini(_Proxy):
    """Wraps a ``genai.client.AsyncClient`` (``client.aio``): ``models`` and ``chats``
    record; every other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def models(self) -> Any:
        return recording_view(self._paid_wrapped.models, AsyncModelsRecording)

    @property
    def chats(self) -> Any:
        from google.genai.chats import AsyncChats

        return AsyncChats(modules=self.models)

    async def __aenter__(self) -> PaidAsyncGemini:
        await self._paid_wrapped.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._paid_wrapped.__aexit__(*exc_info)


class PaidGemini(_Proxy):
    """Wraps a ``google.genai.Client``: ``models``, ``chats`` and ``aio`` record; every
    other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def models(self) -> Any:
        return recording_view(self._paid_wrapped.models, ModelsRecording)

    @property
    def chats(self) -> Any:
        from google.genai.chats import Chats

        return Chats(modules=self.models)

    @property
    def aio(self) -> PaidAsyncGemini:
        return PaidAsyncGemini(self._paid_wrapped.aio)

    def __enter__(self) -> PaidGemini:
        self._paid_wrapped.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._paid_wrapped.__exit__(*exc_info)
