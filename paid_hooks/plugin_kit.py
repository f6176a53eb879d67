"""Small building blocks that plugins share, so each plugin holds only its own mapping.

Plugin module boilerplate:

* :func:`lazy_exports`: the module ``__getattr__`` that imports a wrapper submodule (and
  so the SDK) only when the wrapper class is first used;
* :func:`instrument_hooks`: the ``instrument`` / ``uninstrument`` hook implementations of
  a plugin whose switch lives in one submodule.

Wrapping and patching an SDK:

* :class:`ClientProxy`: a wrapper that behaves exactly like the object it wraps (every
  attribute not overridden passes through), the base of ``PaidOpenAI``, ``PaidAnthropic``...;
  :class:`SdkClientProxy` adds the ``with_options()`` / ``copy()`` that return wrapped copies;
* :func:`mixin_view`: an SDK resource as an instance of ``(mixin, its own class)`` that
  shares its state, so the mixin's methods replace a few of the resource's;
* :class:`MethodPatcher`: replaces methods on SDK classes for auto-instrumentation and
  restores exactly the originals; idempotent and thread-safe. :func:`recording_method`
  builds the replacements;
* :func:`call_exclusive` / :func:`call_exclusive_async`: run the SDK call inside
  ``handle.exclusive()`` and record a raised exception (the plugin contract's pattern);
* :func:`on_collect`: run a callback when an object (a stream) is garbage-collected.

Reading SDK objects and JSON (no provider semantics here: each plugin normalises usage
itself):

* :func:`field`: reads a field from an SDK object or from a plain mapping alike;
* :func:`as_mapping` / :func:`as_str`: a mapping (else an empty one), a non-empty
  string (else ``None``);
* :func:`count` / :func:`number_count`: a token count, or ``None`` when there is none.
"""

from __future__ import annotations

import functools
import importlib
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from paid_hooks.hookspecs import hookimpl

if TYPE_CHECKING:
    from paid_hooks.recorder import CallHandle

__all__ = [
    "ClientProxy",
    "MethodPatcher",
    "PatchTarget",
    "SdkClientProxy",
    "as_mapping",
    "as_str",
    "call_exclusive",
    "call_exclusive_async",
    "count",
    "field",
    "instrument_hooks",
    "lazy_exports",
    "mixin_view",
    "number_count",
    "on_collect",
    "recording_method",
]

T = TypeVar("T")

# -- plugin module boilerplate ------------------------------------------------------------


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` (PEP 562) for ``package``'s lazily imported names.

    ``exports`` maps each exported name to the submodule defining it (``{"PaidOpenAI":
    "_wrapper"}``); the submodule is imported on first access, so importing the plugin
    does not import the SDK. Any other name raises :class:`AttributeError`. Use as
    ``__getattr__ = lazy_exports(__name__, {...})``.
    """
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        submodule = table.get(name)
        if submodule is None:
            raise AttributeError(name)
        return getattr(importlib.import_module(f"{package}.{submodule}"), name)

    return __getattr__


def instrument_hooks(module: str, on: str = "patch",
                     off: str = "unpatch") -> tuple[Callable[[], None], Callable[[], None]]:
    """``(instrument, uninstrument)`` hook implementations that switch ``module`` on and off.

    ``instrument()`` imports ``module`` (an :class:`ImportError` of a missing SDK
    propagates, as the hook contract asks) and calls its function ``on``.
    ``uninstrument()`` calls ``off`` only if ``module`` was ever imported (otherwise
    nothing was switched on) and never imports anything. Both are marked
    ``@paid_hooks.hookimpl``; assign them to the plugin module's names ``instrument`` and
    ``uninstrument``.
    """

    @hookimpl
    def instrument() -> None:
        """Switch on auto-instrumentation (idempotent); ImportError without the SDK."""
        getattr(importlib.import_module(module), on)()

    @hookimpl
    def uninstrument() -> None:
        """Undo :func:`instrument` exactly (idempotent; a no-op when never instrumented)."""
        loaded = sys.modules.get(module)
        if loaded is not None:
            getattr(loaded, off)()

    return instrument, uninstrument


# -- wrapping and patching ----------------------------------------------------------------


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


class SdkClientProxy(ClientProxy):
    """A :class:`ClientProxy` over an SDK client whose ``with_options()`` / ``copy()``
    return a configured copy (OpenAI, Anthropic): the copy comes back wrapped in the same
    class, so it records too."""

    __slots__ = ()

    def with_options(self, *args: Any, **kwargs: Any) -> Self:
        return type(self)(self._paid_wrapped.with_options(*args, **kwargs))

    def copy(self, *args: Any, **kwargs: Any) -> Self:
        return type(self)(self._paid_wrapped.copy(*args, **kwargs))


_view_lock = threading.Lock()
_view_classes: dict[tuple[type, type], type] = {}


def _view_class(mixin: type, cls: type) -> type:
    key = (mixin, cls)
    with _view_lock:
        made = _view_classes.get(key)
        if made is None:
            made = type(f"Paid{cls.__name__}", (mixin, cls),
                        {"__module__": mixin.__module__, "__qualname__": f"Paid{cls.__name__}"})
            _view_classes[key] = made
        return made


def mixin_view(obj: T, mixin: type) -> T:
    """``obj`` as an instance of ``Paid<its class>(mixin, its class)``, sharing its state.

    The view IS an instance of the object's own class (``isinstance`` holds, every method
    works unchanged) and shares its ``__dict__``; the methods ``mixin`` defines come first
    and reach the original ones with ``super()``. One class is built per ``(mixin,
    class)`` pair; ``obj`` itself is returned when it already is a ``mixin``.
    """
    if isinstance(obj, mixin):
        return obj
    view: Any = object.__new__(_view_class(mixin, type(obj)))
    view.__dict__ = obj.__dict__
    return cast(T, view)


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


def recording_method(record: Callable[..., Any], context: Callable[[Any], Any] | None = None,
                     *, asynchronous: bool = False,
                     bypass: Callable[[], bool] | None = None) -> Callable[[Any], Any]:
    """A ``make`` for :meth:`MethodPatcher.patch` that routes a method through ``record``.

    ``make(original)`` returns a function (``async`` when ``asynchronous``) with
    ``original``'s metadata that calls ``record(functools.partial(original, self), args,
    kwargs)``, plus ``context(self)`` as a fourth argument when ``context`` is given, and
    returns (or awaits and returns) its result. While ``bypass()`` is true the original is
    called straight through instead, recording nothing.
    """

    def extra(instance: Any) -> tuple[Any, ...]:
        return () if context is None else (context(instance),)

    def make(original: Any) -> Any:
        if asynchronous:
            @functools.wraps(original)
            async def patched_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                if bypass is not None and bypass():
                    return await original(self, *args, **kwargs)
                return await record(functools.partial(original, self), args, kwargs,
                                    *extra(self))

            return patched_async

        @functools.wraps(original)
        def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
            if bypass is not None and bypass():
                return original(self, *args, **kwargs)
            return record(functools.partial(original, self), args, kwargs, *extra(self))

        return patched

    return make


def call_exclusive(handle: CallHandle, method: Callable[..., T], args: tuple[Any, ...],
                   kwargs: Mapping[str, Any], *,
                   on_error: Callable[[BaseException], None] | None = None) -> T:
    """``method(*args, **kwargs)`` inside ``handle.exclusive()``, so lower layers stand down.

    When it raises, ``on_error(exc)`` (default: ``handle.fail``) records the failure and
    the exception propagates unchanged. Recording the result is left to the caller.
    """
    with handle.exclusive():
        try:
            return method(*args, **kwargs)
        except BaseException as exc:
            (on_error or handle.fail)(exc)
            raise


async def call_exclusive_async(handle: CallHandle, method: Callable[..., Awaitable[T]],
                               args: tuple[Any, ...], kwargs: Mapping[str, Any], *,
                               on_error: Callable[[BaseException], None] | None = None) -> T:
    """``await method(*args, **kwargs)`` inside ``handle.exclusive()``.

    As :func:`call_exclusive`: a raised exception goes to ``on_error`` (default:
    ``handle.fail``) and propagates unchanged.
    """
    with handle.exclusive():
        try:
            return await method(*args, **kwargs)
        except BaseException as exc:
            (on_error or handle.fail)(exc)
            raise


def on_collect(obj: object, callback: Callable[..., Any], *args: Any) -> weakref.finalize[Any, Any]:
    """Call ``callback(*args)`` once when ``obj`` is garbage-collected (not at interpreter exit).

    ``callback`` and ``args`` must not refer to ``obj`` (that would keep it alive).
    Raises :class:`TypeError` when ``obj`` cannot be weakly referenced.
    """
    finalizer = weakref.finalize(obj, callback, *args)
    finalizer.atexit = False
    return finalizer


# -- reading SDK objects and JSON ---------------------------------------------------------

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; ``default`` when absent or None."""
    if obj is None:
        return default
    value = obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)
    return default if value is None else value


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty (read-only) mapping."""
    return value if isinstance(value, Mapping) else _EMPTY


def as_str(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else ``None``."""
    return value if isinstance(value, str) and value else None


def count(value: Any) -> int | None:
    """``int(value)`` for anything ``int()`` accepts (numbers, numeric strings); ``None``
    for ``None``, booleans and anything else."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def number_count(value: Any) -> int | None:
    """``int(value)`` for an ``int`` or ``float`` (truncated); ``None`` for anything else,
    booleans and numeric strings included."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
