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

from paid_hooks.plugin_kit import MethodPatcher, PatchTarget, recording_method
from paid_hooks_openai._calls import record_async, record_sync
from paid_hooks_openai._operations import METHODS

__all__ = ["patch", "unpatch"]

_patcher = MethodPatcher()


def _targets() -> list[PatchTarget]:
    """One target per method present in the installed SDK (a missing one is skipped)."""
    targets: dict[tuple[type, str], PatchTarget] = {}
    for method in METHODS:
        try:
            module = importlib.import_module(method.module)
        except ImportError:
            continue  # an SDK version without this resource: nothing to record
        for class_name, record, asynchronous in ((method.sync_class, record_sync, False),
                                                 (method.async_class, record_async, True)):
            cls = getattr(module, class_name, None)
            if not isinstance(cls, type) or cls.__dict__.get(method.name) is None:
                continue
            make = recording_method(functools.partial(record, operation=method.operation),
                                    asynchronous=asynchronous, patcher=_patcher)
            targets.setdefault((cls, method.name), (cls, method.name, make))
    return list(targets.values())


def patch() -> None:
    """Idempotent; raises ImportError when openai is not installed."""
    import openai  # noqa: F401  (ImportError names the missing SDK)

    _patcher.patch(_targets())


def unpatch() -> None:
    """Restore every original function. Idempotent."""
    _patcher.unpatch()
