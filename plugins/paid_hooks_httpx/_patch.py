"""Process-wide instrumentation: hook every httpx/httpx2 client created from now on.

``patch()`` wraps ``__init__`` of ``httpx.Client``, ``httpx.AsyncClient``,
``httpx2.Client`` and ``httpx2.AsyncClient`` (whichever are installed): the original
``__init__`` runs unchanged, then the client gets this plugin's event hooks, exactly as
:func:`paid_hooks_httpx.instrument_client` would attach them. This was chosen over
wrapping ``send`` (which reads non-streamed bodies itself, before a wrapper could tee
them) or a private method such as ``_send_single_request``: it uses only the public
``event_hooks`` API, so the transport, proxies and limits are untouched.

``unpatch()`` restores each ``__init__`` (when no one wrapped it after us; otherwise our
wrapper stays in place but does nothing) and removes the hooks from every client that
was hooked automatically. Clients created before ``patch()`` are not hooked: use
``instrument_client`` for those.
"""

from __future__ import annotations

import functools
import importlib
import threading
from typing import Any

from paid_hooks_httpx import _hooks

__all__ = ["patch", "unpatch"]

_lock = threading.Lock()
_originals: dict[type, tuple[Any, Any]] = {}
"""class -> (original ``__init__``, our wrapper)."""
_active = False


def _wrap(original: Any) -> Any:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if _active:
            _hooks.attach_auto(self)

    return __init__


def patch() -> None:
    """Idempotent. Raises ImportError when neither httpx nor httpx2 is installed."""
    global _active
    modules = []
    for name in ("httpx", "httpx2"):
        try:
            modules.append(importlib.import_module(name))
        except ImportError:
            continue
    if not modules:
        raise ImportError("paid_hooks_httpx needs httpx or httpx2: "
                          "pip install 'paid-hooks[httpx]'")
    with _lock:
        for mod in modules:
            for cls in (mod.Client, mod.AsyncClient):
                if cls in _originals:
                    continue
                original = cls.__dict__["__init__"]
                wrapper = _wrap(original)
                _originals[cls] = (original, wrapper)
                cls.__init__ = wrapper
        _active = True


def unpatch() -> None:
    """Idempotent; never raises."""
    global _active
    with _lock:
        _active = False
        for cls, (original, wrapper) in list(_originals.items()):
            if cls.__dict__.get("__init__") is wrapper:
                cls.__init__ = original
                del _originals[cls]
    _hooks.detach_auto()
