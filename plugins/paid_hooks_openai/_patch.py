"""Auto-instrumentation: patch the SDK's resource classes (undone by :func:`unpatch`).

Every method in :data:`~paid_hooks_openai._operations.METHODS` is replaced, on its sync and
its async resource class, by a function that records the call. :func:`unpatch` puts the
exact original function objects back (``Completions.create is original`` holds again).

References taken while patched and kept afterwards (the SDK caches bound methods in
``with_raw_response`` / ``with_streaming_response`` objects) see that the patch is no
longer active and call the original straight through, recording nothing.
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import Any

from paid_hooks_openai._calls import record_async, record_sync
from paid_hooks_openai._operations import METHODS, Operation

__all__ = ["is_patched", "patch", "unpatch"]

_lock = threading.Lock()
_originals: dict[tuple[type, str], Any] = {}


def is_patched() -> bool:
    return bool(_originals)


def _sync_patch(original: Any, operation: Operation) -> Any:
    @functools.wraps(original)
    def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _originals:
            return original(self, *args, **kwargs)
        return record_sync(functools.partial(original, self), args, kwargs, operation)

    return patched


def _async_patch(original: Any, operation: Operation) -> Any:
    @functools.wraps(original)
    async def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not _originals:
            return await original(self, *args, **kwargs)
        return await record_async(functools.partial(original, self), args, kwargs, operation)

    return patched


def patch() -> None:
    """Idempotent; raises ImportError when openai is not installed."""
    import openai  # noqa: F401  (ImportError names the missing SDK)

    with _lock:
        if _originals:
            return
        originals: dict[tuple[type, str], Any] = {}
        replacements: list[tuple[type, str, Any]] = []
        for method in METHODS:
            try:
                module = importlib.import_module(method.module)
            except ImportError:
                continue  # an SDK version without this resource: nothing to record
            for class_name, make in ((method.sync_class, _sync_patch),
                                     (method.async_class, _async_patch)):
                cls = getattr(module, class_name, None)
                original = cls.__dict__.get(method.name) if isinstance(cls, type) else None
                if cls is None or original is None or (cls, method.name) in originals:
                    continue
                originals[(cls, method.name)] = original
                replacements.append((cls, method.name, make(original, method.operation)))
        _originals.update(originals)
        for cls, name, patched in replacements:
            setattr(cls, name, patched)


def unpatch() -> None:
    """Restore every original function. Idempotent."""
    with _lock:
        for (cls, name), original in _originals.items():
            setattr(cls, name, original)
        _originals.clear()
