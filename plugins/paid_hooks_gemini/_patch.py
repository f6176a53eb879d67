"""Auto-instrumentation: patch the SDK's per-request methods (undone by :func:`unpatch`).

Patched: ``Models._generate_content``, ``Models._generate_content_stream``,
``Models._embed_content`` and the same three on ``AsyncModels``. Every
``genai.Client()`` in the process, its ``client.aio`` and its chats are recorded,
whatever HTTP transport (httpx, or aiohttp for ``client.aio``) sends the request.
"""

from __future__ import annotations

from paid_hooks.plugin_kit import MethodPatcher, PatchTarget, recording_method
from paid_hooks_gemini._calls import (
    provider_of,
    record_embed,
    record_embed_async,
    record_generate,
    record_generate_async,
    record_stream,
    record_stream_async,
)

__all__ = ["patch", "unpatch"]

_patcher = MethodPatcher()


def _targets() -> list[PatchTarget]:
    from google.genai.models import AsyncModels, Models

    return [
        (Models, "_generate_content", recording_method(record_generate, provider_of)),
        (Models, "_generate_content_stream", recording_method(record_stream, provider_of)),
        (Models, "_embed_content", recording_method(record_embed, provider_of)),
        (AsyncModels, "_generate_content",
         recording_method(record_generate_async, provider_of, asynchronous=True)),
        (AsyncModels, "_generate_content_stream",
         recording_method(record_stream_async, provider_of, asynchronous=True)),
        (AsyncModels, "_embed_content",
         recording_method(record_embed_async, provider_of, asynchronous=True)),
    ]


def patch() -> None:
    """Idempotent; raises ImportError when google-genai is not installed."""
    _patcher.patch(_targets())


def unpatch() -> None:
    """Restore the original methods. Idempotent."""
    _patcher.unpatch()
