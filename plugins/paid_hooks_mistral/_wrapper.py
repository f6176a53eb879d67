"""``PaidMistral``: a wrapper that behaves exactly like the ``Mistral`` client it wraps."""

from __future__ import annotations

from typing import Any

from paid_hooks.plugin_kit import ClientProxy, mixin_view
from paid_hooks_mistral._resources import ChatRecording, EmbeddingsRecording, OcrRecording

__all__ = ["PaidMistral"]


class PaidMistral(ClientProxy):
    """Wraps ``mistralai.client.Mistral``; records chat, embeddings and OCR calls.

    ``chat``, ``embeddings`` and ``ocr`` are the client's own resources, as recording
    subclasses sharing their state; every other attribute passes through unchanged.
    Sync and async methods live on the same client, as in the SDK.
    """

    __slots__ = ()

    def __init__(self, client: Any) -> None:
        super().__init__(client)

    @property
    def chat(self) -> Any:
        return mixin_view(self._paid_wrapped.chat, ChatRecording)

    @property
    def embeddings(self) -> Any:
        return mixin_view(self._paid_wrapped.embeddings, EmbeddingsRecording)

    @property
    def ocr(self) -> Any:
        return mixin_view(self._paid_wrapped.ocr, OcrRecording)

    def __enter__(self) -> PaidMistral:
        self._paid_wrapped.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._paid_wrapped.__exit__(*exc_info)

    async def __aenter__(self) -> PaidMistral:
        await self._paid_wrapped.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await self._paid_wrapped.__aexit__(*exc_info)
