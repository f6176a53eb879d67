"""Recording versions of the SDK's ``Chat``, ``Embeddings`` and ``Ocr`` resources: mixins.

The wrapper's ``plugin_kit.mixin_view(resource, ChatRecording)`` returns an instance of a
subclass of the resource's own class that shares the original object's state
(``__dict__``): it IS a ``Chat`` (isinstance holds, every other method works unchanged)
whose ``complete``/``stream``/... methods record. Methods the SDK builds on them
(``chat.parse`` calls ``self.complete``) are recorded too. ``super()`` reaches the SDK's
method, or the auto-instrumentation patch when it is active, which then stands down
(``exclusive()``): one row per call.
"""

from __future__ import annotations

from typing import Any

from paid_hooks_mistral._calls import (
    CHAT,
    EMBEDDINGS,
    OCR,
    record_async,
    record_stream,
    record_stream_async,
    record_sync,
)

__all__ = ["ChatRecording", "EmbeddingsRecording", "OcrRecording"]


class ChatRecording:
    """Mixin for ``mistralai.client.chat.Chat``."""

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        return record_sync(super().complete, args, kwargs, CHAT)  # type: ignore[misc]

    async def complete_async(self, *args: Any, **kwargs: Any) -> Any:
        return await record_async(super().complete_async, args, kwargs,  # type: ignore[misc]
                                  CHAT)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        return record_stream(super().stream, args, kwargs)  # type: ignore[misc]

    async def stream_async(self, *args: Any, **kwargs: Any) -> Any:
        return await record_stream_async(super().stream_async, args,  # type: ignore[misc]
                                         kwargs)


class EmbeddingsRecording:
    """Mixin for ``mistralai.client.embeddings.Embeddings``."""

    def create(self, *args: Any, **kwargs: Any) -> Any:
        return record_sync(super().create, args, kwargs, EMBEDDINGS)  # type: ignore[misc]

    async def create_async(self, *args: Any, **kwargs: Any) -> Any:
        return await record_async(super().create_async, args, kwargs,  # type: ignore[misc]
                                  EMBEDDINGS)


class OcrRecording:
    """Mixin for ``mistralai.client.ocr.Ocr``."""

    def process(self, *args: Any, **kwargs: Any) -> Any:
        return record_sync(super().process, args, kwargs, OCR)  # type: ignore[misc]

    async def process_async(self, *args: Any, **kwargs: Any) -> Any:
        return await record_async(super().process_async, args, kwargs,  # type: ignore[misc]
                                  OCR)
