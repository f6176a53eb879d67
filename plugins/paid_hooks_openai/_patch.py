"""Auto-instrumentation: patch the SDK's resource classes (undone by :func:`unpatch`)."""

from __future__ import annotations

import functools
import threading
from typing import Any

from paid_hooks_openai._calls import record_chat_create, record_chat_create_async

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


def _patch_sync(cls: type, name: str) -> None:
    original = cls.__dict__[name]

    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return record_chat_create(functools.partial(original, self), args, kwargs)

    _originals[(cls, name)] = original
    setattr(cls, name, patched)


def _patch_async(cls: type, name: str) -> None:
    original = cls.__dict__[name]

    @functools.wraps(original)
    async def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await record_chat_create_async(functools.partial(original, self), args, kwargs)

    _originals[(cls, name)] = original
    setattr(cls, name, patched)


def patch() -> None:
    """Idempotent; raises ImportError when openai is not installed."""
    from openai.resources.chat.completions import AsyncCompletions, Completions

    with _lock:
        if _originals:
            return
        _patch_sync(Completions, "create")
        _patch_async(AsyncCompletions, "create")


def unpatch() -> None:
    with _lock:
        for (cls, name), original in _originals.items():
            setattr(cls, name, original)
        _originals.clear()
