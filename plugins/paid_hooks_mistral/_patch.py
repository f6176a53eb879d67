"""Auto-instrumentation: patch the SDK's resource classes (undone by :func:`unpatch`).

Patched: ``Chat.complete/complete_async/stream/stream_async``,
``Embeddings.create/create_async`` and ``Ocr.process/process_async``, so every
``Mistral()`` client in the process is recorded.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from paid_hooks_mistral._calls import (
    CHAT,
    EMBEDDINGS,
    OCR,
    Operation,
    record_async,
    record_stream,
    record_stream_async,
    record_sync,
)

__all__ = ["patch", "patched", "unpatch"]

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


def _sync(op: Operation) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            return record_sync(functools.partial(original, self), args, kwargs, op)
        return wrapper
    return make


def _async(op: Operation) -> Callable[[Any], Any]:
    def make(original: Any) -> Any:
        @functools.wraps(original)
        async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            return await record_async(functools.partial(original, self), args, kwargs, op)
        return wrapper
    return make


def _stream(original: Any) -> Any:
    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        return record_stream(functools.partial(original, self), args, kwargs)
    return wrapper


def _stream_async(original: Any) -> Any:
    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await record_stream_async(functools.partial(original, self), args, kwargs)
    return wrapper


def _targets() -> list[tuple[type, str, Callable[[Any], Any]]]:
    from mistralai.client.chat import Chat
    from mistralai.client.embeddings import Embeddings
    from mistralai.client.ocr import Ocr

    return [
        (Chat, "complete", _sync(CHAT)),
        (Chat, "complete_async", _async(CHAT)),
        (Chat, "stream", _stream),
        (Chat, "stream_async", _stream_async),
        (Embeddings, "create", _sync(EMBEDDINGS)),
        (Embeddings, "create_async", _async(EMBEDDINGS)),
        (Ocr, "process", _sync(OCR)),
        (Ocr, "process_async", _async(OCR)),
    ]


def patch() -> None:
    """Idempotent; raises ImportError when mistralai is not installed."""
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
