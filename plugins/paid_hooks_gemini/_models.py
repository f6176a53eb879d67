"""Recording versions of the SDK's ``Models`` and ``AsyncModels``: mixins.

The wrapper's ``plugin_kit.mixin_view(models, ModelsRecording)`` returns an instance of a
subclass of the object's own class that shares the original's state (``__dict__``): it
IS a ``Models`` (every method works unchanged) whose per-request methods record. The
SDK's public methods (``generate_content``, ``generate_content_stream``,
``embed_content``, and the chats built on them) call those per-request methods, so every
request they send is recorded. ``super()`` reaches the SDK's method, or the
auto-instrumentation patch when it is active, which then stands down (``exclusive()``):
one row per request.
"""

from __future__ import annotations

from typing import Any

from paid_hooks_gemini._calls import (
    provider_of,
    record_embed,
    record_embed_async,
    record_generate,
    record_generate_async,
    record_stream,
    record_stream_async,
)

__all__ = ["AsyncModelsRecording", "ModelsRecording"]


class ModelsRecording:
    """Mixin for ``google.genai.models.Models``."""

    def _generate_content(self, *args: Any, **kwargs: Any) -> Any:
        return record_generate(super()._generate_content, args, kwargs,  # type: ignore[misc]
                               provider_of(self))

    def _generate_content_stream(self, *args: Any, **kwargs: Any) -> Any:
        return record_stream(super()._generate_content_stream, args,  # type: ignore[misc]
                             kwargs, provider_of(self))

    def _embed_content(self, *args: Any, **kwargs: Any) -> Any:
        return record_embed(super()._embed_content, args, kwargs,  # type: ignore[misc]
                            provider_of(self))


class AsyncModelsRecording:
    """Mixin for ``google.genai.models.AsyncModels``."""

    async def _generate_content(self, *args: Any, **kwargs: Any) -> Any:
        return await record_generate_async(super()._generate_content,  # type: ignore[misc]
                                           args, kwargs, provider_of(self))

    async def _generate_content_stream(self, *args: Any, **kwargs: Any) -> Any:
        return await record_stream_async(super()._generate_content_stream,  # type: ignore[misc]
                                         args, kwargs, provider_of(self))

    async def _embed_content(self, *args: Any, **kwargs: Any) -> Any:
        return await record_embed_async(super()._embed_content,  # type: ignore[misc]
                                        args, kwargs, provider_of(self))
