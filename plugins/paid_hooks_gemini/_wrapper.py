"""``PaidGemini``: a wrapper that behaves exactly like the ``genai.Client`` it wraps."""

from __future__ import annotations

from typing import Any

from paid_hooks.plugin_kit import ClientProxy, mixin_view
from paid_hooks_gemini._models import AsyncModelsRecording, ModelsRecording

__all__ = ["PaidAsyncGemini", "PaidGemini"]


class PaidAsyncGemini(ClientProxy):
    """Wraps a ``genai.client.AsyncClient`` (``client.aio``): ``models`` and ``chats``
    record; every other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def models(self) -> Any:
        return mixin_view(self._paid_wrapped.models, AsyncModelsRecording)

    @property
    def chats(self) -> Any:
        from google.genai.chats import AsyncChats

        return AsyncChats(modules=self.models)

    async def __aenter__(self) -> PaidAsyncGemini:
        await self._paid_wrapped.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self._paid_wrapped.__aexit__(*exc_info)


class PaidGemini(ClientProxy):
    """Wraps a ``google.genai.Client``: ``models``, ``chats`` and ``aio`` record; every
    other attribute passes through unchanged."""

    __slots__ = ()

    @property
    def models(self) -> Any:
        return mixin_view(self._paid_wrapped.models, ModelsRecording)

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
