"""Small building blocks that plugins share, so each plugin holds only its own mapping.

* :class:`ClientProxy`: a wrapper that behaves exactly like the object it wraps (every
  attribute not overridden passes through), the base of ``PaidOpenAI``, ``PaidAnthropic``...
* :class:`MethodPatcher`: replaces methods on SDK classes for auto-instrumentation and
  restores exactly the originals; idempotent and thread-safe.
* :func:`field`: reads a field from an SDK object or from a plain dict alike.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["ClientProxy", "MethodPatcher", "field"]


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; ``default`` when absent or None."""
    if obj is None:
        return default
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return default if value is None else value


class ClientProxy:
    """Passes every attribute through to the wrapped object unless a subclass overrides it.

    Setting an attribute sets it on the wrapped object; ``dir()`` and ``repr()`` show both.
    Subclasses declare ``__slots__ = ()`` and reach the wrapped object as ``_paid_wrapped``.
    """

    __slots__ = ("_paid_wrapped",)

    def __init__(self, wrapped: Any) -> None:
        object.__setattr__(self, "_paid_wrapped", wrapped)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._paid_wrapped, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._paid_wrapped, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(dir(self._paid_wrapped)) | set(super().__dir__()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._paid_wrapped!r})"


PatchTarget = tuple[type, str, Callable[[Any], Any]]
"""``(cls, method_name, make)``: ``make(original)`` returns the replacement."""


class MethodPatcher:
    """Replaces methods on classes and puts exactly the originals back.

    ``patch`` is idempotent (a second call while patched changes nothing) and all-or-nothing
    per call; ``unpatch`` restores every original and is idempotent too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._originals: dict[tuple[type, str], Any] = {}

    @property
    def active(self) -> bool:
        return bool(self._originals)

    def patch(self, targets: Iterable[PatchTarget]) -> None:
        with self._lock:
            if self._originals:
                return
            replaced: dict[tuple[type, str], Any] = {}
            try:
                for cls, name, make in targets:
                    original = cls.__dict__[name]
                    setattr(cls, name, make(original))
                    replaced[(cls, name)] = original
            except BaseException:
                for (cls, name), original in replaced.items():
                    setattr(cls, name, original)
                raise
            self._originals = replaced

    def unpatch(self) -> None:
        with self._lock:
            for (cls, name), original in self._originals.items():
                setattr(cls, name, original)
            self._originals = {}

    def original(self, cls: type, name: str) -> Any:
        """The method that was replaced, or ``None`` when not patched."""
        return self._originals.get((cls, name))
