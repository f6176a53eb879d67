"""Auto-instrumentation: patch the SDK's per-request methods (undone by :func:`unpatch`).

Patched: ``Models._generate_content``, ``Models._generate_content_stream``,
``Models._embed_content`` and the same three on ``AsyncModels``. Every
``genai.Client()`` in the process, its ``client.aio`` and its chats are recorded,
whatever HTTP transport (httpx, or aiohttp for ``client.aio``) sends the request.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
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

__all__ = ["patch", "patched", "unpatch"]

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}

Recorder = Callable[..., Any]


def _sync(record: Recorder) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            return record(functools.partial(original, self), args, kwargs, provider_of(self))
        return wrapper
    return make


def _async(record: Recorder) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await record(functools.partial(original, self), args, kwargs,
                                provider_of(self))
        return wrapper
    return make


def _targets() -> list[tuple[type, str, Callable[[Any], Any]]]:
    from google.genai.models import AsyncModels, Models

    return [
        (Models, "_generate_content", _sync(record_generate)),
        (Models, "_generate_content_stream", _sync(record_stream)),
        (Models, "_embed_content", _sync(record_embed)),
        (AsyncModels, "_generate_content", _async(record_generate_async)),
        (AsyncModels, "_generate_content_stream", _async(record_stream_async)),
        (AsyncModels, "_embed_content", _async(record_embed_async)),
    ]


def patch() -> None:
    """Idempotent; raises ImportError when google-genai is not installed."""
    targets = _targets()
    with _lock:
        if _originals:
            return
        for cls, name, make in targets:
            original = cls.__dict__[name]
            _originals[(cls, name)] = original
            setattr(cls, name, make(original))


def unpatch() -> None:
    """Restore the original methods. Idempotent."""
    with _lock:
        for (cls, name), original in _originals.items():
            setattr(cls, name, original)
        _originals.clear()


def patched() -> bool:
    return bool(_originals)
