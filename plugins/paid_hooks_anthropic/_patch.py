"""Auto-instrumentation: patch the SDK's message resource classes (undone by :func:`unpatch`).

Patched: ``create``, ``parse`` and ``stream`` of ``Messages`` and ``AsyncMessages`` in
``anthropic.resources.messages`` and ``anthropic.resources.beta.messages``. The original
functions are kept and put back exactly.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from paid_hooks_anthropic._calls import record_create, record_create_async, record_stream

__all__ = ["patch", "unpatch"]

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


def _patch_sync(cls: type, name: str) -> None:
    original = cls.__dict__[name]

    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return record_create(functools.partial(original, self), args, kwargs, self)

    _originals[(cls, name)] = original
    setattr(cls, name, patched)


def _patch_async(cls: type, name: str) -> None:
    original = cls.__dict__[name]

    @functools.wraps(original)
    async def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return await record_create_async(functools.partial(original, self), args, kwargs, self)

    _originals[(cls, name)] = original
    setattr(cls, name, patched)


def _patch_stream(cls: type, name: str) -> None:
    original = cls.__dict__[name]

    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        return record_stream(functools.partial(original, self), args, kwargs, self)

    _originals[(cls, name)] = original
    setattr(cls, name, patched)


def patch() -> None:
    """Idempotent; raises ImportError when anthropic is not installed."""
    from anthropic.resources.beta.messages import messages as beta_messages
    from anthropic.resources.messages import messages

    with _lock:
        if _originals:
            return
        try:
            for module in (messages, beta_messages):
                _patch_sync(module.Messages, "create")
                _patch_sync(module.Messages, "parse")
                _patch_stream(module.Messages, "stream")
                _patch_async(module.AsyncMessages, "create")
                _patch_async(module.AsyncMessages, "parse")
                _patch_stream(module.AsyncMessages, "stream")
        except BaseException:
            _restore()
            raise


def _restore() -> None:
    for (cls, name), original in _originals.items():
        setattr(cls, name, original)
    _originals.clear()


def unpatch() -> None:
    """Put every original back. Idempotent."""
    with _lock:
        _restore()
