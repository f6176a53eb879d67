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
* :func:`on_collect`: run a callback when an object (a stream) is garbage-collected;
* :func:`current_otel_context`: OpenTelemetry's current context, as ``start_call`` reads
  it (for a plugin that checks suppression before it starts a call).

Reading SDK objects and JSON (no provider semantics here: each plugin normalises usage
itself):

* :func:`field`: reads a field from an SDK object or from a plain mapping alike (cheaply
  for an SDK's pydantic object, even when the field is absent); :func:`field_reader` reads
  several at once; :func:`has_attribute` is ``hasattr`` with the same care;
* :func:`declares_fields` / :func:`reads_from_dict`: whether an SDK class allows a faster
  direct read (``attrgetter``, ``obj.__dict__``), decided once at import;
* :func:`as_mapping` / :func:`as_str`: a mapping (else an empty one), a non-empty
  string (else ``None``);
* :func:`count` / :func:`number_count`: a token count, or ``None`` when there is none.
"""

from __future__ import annotations

import functools
import importlib
import operator
import sys
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import Token
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from paid_hooks.hookspecs import hookimpl
from paid_hooks.recorder import _IN_FLIGHT, _otel_current

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
    "current_otel_context",
    "declares_fields",
    "field",
    "field_reader",
    "has_attribute",
    "instrument_hooks",
    "lazy_exports",
    "mixin_view",
    "number_count",
    "on_collect",
    "reads_from_dict",
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
                     bypass: Callable[[], bool] | None = None,
                     patcher: MethodPatcher | None = None) -> Callable[[Any], Any]:
    """A ``make`` for :meth:`MethodPatcher.patch` that routes a method through ``record``.

    ``make(original)`` returns a function (``async`` when ``asynchronous``) with
    ``original``'s metadata that calls ``record(functools.partial(original, self), args,
    kwargs)``, plus ``context(self)`` as a fourth argument when ``context`` is given, and
    returns (or awaits and returns) its result. While ``bypass()`` is true, or while
    ``patcher`` is given and not :attr:`~MethodPatcher.active` (a reference kept after
    ``unpatch``), the original is called straight through instead, recording nothing.
    """
    partial = functools.partial

    def make(original: Any) -> Any:
        if asynchronous:
            if context is None:
                @functools.wraps(original)
                async def patched_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                    if (patcher is not None and not patcher._originals) or (
                            bypass is not None and bypass()):
                        return await original(self, *args, **kwargs)
                    return await record(partial(original, self), args, kwargs)
            else:
                @functools.wraps(original)
                async def patched_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                    if (patcher is not None and not patcher._originals) or (
                            bypass is not None and bypass()):
                        return await original(self, *args, **kwargs)
                    return await record(partial(original, self), args, kwargs, context(self))

            return patched_async

        if context is None:
            @functools.wraps(original)
            def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
                if (patcher is not None and not patcher._originals) or (
                        bypass is not None and bypass()):
                    return original(self, *args, **kwargs)
                return record(partial(original, self), args, kwargs)
        else:
            @functools.wraps(original)
            def patched(self: Any, *args: Any, **kwargs: Any) -> Any:
                if (patcher is not None and not patcher._originals) or (
                        bypass is not None and bypass()):
                    return original(self, *args, **kwargs)
                return record(partial(original, self), args, kwargs, context(self))

        return patched

    return make


def call_exclusive(handle: CallHandle, method: Callable[..., T], args: tuple[Any, ...],
                   kwargs: Mapping[str, Any], *,
                   on_error: Callable[[BaseException], None] | None = None) -> T:
    """``method(*args, **kwargs)`` inside ``handle.exclusive()``, so lower layers stand down.

    When it raises, ``on_error(exc)`` (default: ``handle.fail``) records the failure and
    the exception propagates unchanged. Recording the result is left to the caller.
    """
    # ``with handle.exclusive():`` inlined (the same context-variable set and reset):
    # no block object and three Python calls fewer on every AI call.
    token = _IN_FLIGHT.set(handle.captured_by) if handle.recording else None
    try:
        return method(*args, **kwargs)
    except BaseException as exc:
        (on_error or handle.fail)(exc)
        raise
    finally:
        if token is not None:
            _leave_exclusive(token)


async def call_exclusive_async(handle: CallHandle, method: Callable[..., Awaitable[T]],
                               args: tuple[Any, ...], kwargs: Mapping[str, Any], *,
                               on_error: Callable[[BaseException], None] | None = None) -> T:
    """``await method(*args, **kwargs)`` inside ``handle.exclusive()``.

    As :func:`call_exclusive`: a raised exception goes to ``on_error`` (default:
    ``handle.fail``) and propagates unchanged.
    """
    token = _IN_FLIGHT.set(handle.captured_by) if handle.recording else None  # as above
    try:
        return await method(*args, **kwargs)
    except BaseException as exc:
        (on_error or handle.fail)(exc)
        raise
    finally:
        if token is not None:
            _leave_exclusive(token)


def _leave_exclusive(token: Token[str | None]) -> None:
    """Undo the ``set`` of an exclusive block (as ``CallHandle.__exit__`` does)."""
    try:
        _IN_FLIGHT.reset(token)
    except ValueError:  # set in another context
        _IN_FLIGHT.set(None)


def on_collect(obj: object, callback: Callable[..., Any], *args: Any) -> weakref.finalize[Any, Any]:
    """Call ``callback(*args)`` once when ``obj`` is garbage-collected (not at interpreter exit).

    ``callback`` and ``args`` must not refer to ``obj`` (that would keep it alive).
    Raises :class:`TypeError` when ``obj`` cannot be weakly referenced.
    """
    finalizer = weakref.finalize(obj, callback, *args)
    finalizer.atexit = False
    return finalizer


current_otel_context: Callable[[], Any] = _otel_current
"""OpenTelemetry's ``context.get_current()``: its context variable's own ``get`` when the
runtime context is the usual context-variable one (decided once, at import; two Python
calls fewer per use), else ``get_current`` itself. The same function ``start_call``
uses."""


# -- reading SDK objects and JSON ---------------------------------------------------------

_EMPTY: Mapping[str, Any] = MappingProxyType({})

# How :func:`field` reads an object, decided once per class (``_KINDS``): a mapping is read
# with ``.get``; a pydantic v2 model (the SDKs' objects) from its ``__dict__`` and
# ``__pydantic_extra__``, which is what ``getattr`` finds there, minus the cost of
# pydantic's ``__getattr__`` raising ``AttributeError`` for an absent field (microseconds);
# anything else with ``getattr``. For a pydantic class the entry is a dict ``name -> True``
# when that shortcut gives exactly ``getattr``'s answer (the class has no attribute of that
# name and it is not a private attribute), else ``False``.
_MAPPING = object()
_PLAIN = object()
_KINDS: dict[type, Any] = {}
_KINDS_LIMIT = 1024
"""Beyond this many classes the cache starts over (classes made on the fly, mocks)."""
_MISSING = object()


def _is_pydantic_model(cls: type) -> bool:
    """A pydantic v2 model class with pydantic's own attribute lookup."""
    base = getattr(sys.modules.get("pydantic.main"), "BaseModel", None)
    return (base is not None and isinstance(cls, type) and issubclass(cls, base)
            and getattr(cls, "__getattr__", None) is getattr(base, "__getattr__", None)
            and cls.__getattribute__ is object.__getattribute__)  # type: ignore[comparison-overlap]


def _classify(obj: Any, cls: type) -> Any:
    if isinstance(obj, Mapping):
        kind: Any = _MAPPING
    else:
        kind = {} if _is_pydantic_model(cls) else _PLAIN
    if obj.__class__ is cls:  # an object lying about its class is classified every time
        if len(_KINDS) >= _KINDS_LIMIT:
            _KINDS.clear()
        _KINDS[cls] = kind
    return kind


def _direct(plan: dict[str, bool], cls: type, name: str) -> bool:
    """Whether ``getattr`` finds ``name`` on a ``cls`` model only in its ``__dict__`` or
    ``__pydantic_extra__`` (no class attribute, not a private attribute); cached."""
    direct = plan.get(name)
    if direct is None:
        direct = plan[name] = not hasattr(cls, name) and name not in getattr(
            cls, "__private_attributes__", ())
    return direct


def _pydantic_get(obj: Any, plan: dict[str, bool], name: str, missing: Any) -> Any:
    """``getattr(obj, name, missing)`` for a pydantic model, without raising inside."""
    direct = plan.get(name)
    if direct is None:
        direct = _direct(plan, type(obj), name)
    if direct:
        values = obj.__dict__
        if name in values:
            return values[name]
        try:
            extra = obj.__pydantic_extra__
        except AttributeError:
            extra = None
        if extra and name in extra:
            return extra[name]
        return missing
    return getattr(obj, name, missing)


def field(obj: Any, name: str, default: Any = None) -> Any:
    """``obj[name]`` for a mapping, ``obj.name`` otherwise; ``default`` when absent or None."""
    if obj is None:
        return default
    cls = type(obj)
    if cls is dict:
        value = obj.get(name)
    else:
        kind = _KINDS.get(cls)
        if kind is None:
            kind = _classify(obj, cls)
        if kind is _MAPPING:
            value = obj.get(name)
        elif kind is _PLAIN:
            value = getattr(obj, name, None)
        else:
            value = _pydantic_get(obj, kind, name, None)
    return default if value is None else value


def has_attribute(obj: Any, name: str) -> bool:
    """``hasattr(obj, name)``, cheap for an SDK (pydantic) object that lacks the attribute."""
    kind = _KINDS.get(type(obj))
    if kind is None:
        kind = _classify(obj, type(obj))
    if kind is _MAPPING or kind is _PLAIN:
        return hasattr(obj, name)
    return _pydantic_get(obj, kind, name, _MISSING) is not _MISSING


_BY_FIELD = 0
"""``field_reader`` modes: one :func:`field` call per name (mappings, odd objects)."""
_BY_ATTRGETTER = 1
"""One ``operator.attrgetter`` call (plain objects, pydantic models declaring every name)."""
_BY_DICT = 2
"""From the pydantic model's ``__dict__`` / ``__pydantic_extra__`` (some names undeclared)."""


def _read_mode(obj: Any, cls: type, names: tuple[str, ...]) -> int:
    """How ``field_reader`` reads ``names`` from a ``cls`` object (decided once per class)."""
    kind = _KINDS.get(cls)
    if kind is None:
        kind = _classify(obj, cls)
    if kind is _MAPPING:
        return _BY_FIELD
    if kind is _PLAIN:
        return _BY_ATTRGETTER
    declared = getattr(cls, "__pydantic_fields__", None) or {}
    if all(name in declared for name in names):
        return _BY_ATTRGETTER
    if all(_direct(kind, cls, name) for name in names):
        return _BY_DICT  # no name is a class attribute or a private one: getattr reads these
    return _BY_FIELD


def declares_fields(cls: Any, *names: str) -> bool:
    """True when ``cls`` is a pydantic model class declaring every one of ``names`` as a field.

    For such a class (an SDK's response types) reading those attributes directly, with
    ``operator.attrgetter`` and a fallback on ``AttributeError``, gives :func:`field`'s
    answers: use it to pick a fast path once, at import time.
    """
    declared = getattr(cls, "__pydantic_fields__", None)
    return isinstance(declared, dict) and all(name in declared for name in names)


def reads_from_dict(cls: Any, *names: str) -> bool:
    """True when, on a ``cls`` object, ``getattr`` of each of ``names`` is the value in the
    object's ``__dict__`` when that holds the name: a pydantic model class that declares
    the names as fields, with no class or private attribute of those names.

    Then ``obj.__dict__[name]`` (with a fallback on ``KeyError``) reads what :func:`field`
    reads, and costs less than an attribute lookup: a fast path to pick at import time.
    """
    if not (_is_pydantic_model(cls) and declares_fields(cls, *names)):
        return False
    private = getattr(cls, "__private_attributes__", ())
    return not any(hasattr(cls, name) or name in private for name in names)


def field_reader(*names: str) -> Callable[[Any], tuple[Any, ...]]:
    """A function reading several fields at once: ``field_reader("a", "b")(obj)`` is
    ``(field(obj, "a"), field(obj, "b"))`` (``None`` for each absent one).

    For an SDK (pydantic) object, or a plain object, the values are read without one
    :func:`field` call per name (one ``operator.attrgetter`` call when the class declares
    them all); how is decided once per class.
    """
    if len(names) < 2:
        raise ValueError("field_reader reads two fields or more; use field() for one")
    get = operator.attrgetter(*names)
    nones = (None,) * len(names)
    modes: dict[type, int] = {}

    def read(obj: Any) -> tuple[Any, ...]:
        if obj is None:
            return nones
        cls = type(obj)
        mode = modes.get(cls)
        if mode is None:
            mode = _read_mode(obj, cls, names)
            if obj.__class__ is cls:
                if len(modes) >= _KINDS_LIMIT:
                    modes.clear()
                modes[cls] = mode
        if mode == _BY_ATTRGETTER:
            try:
                values: tuple[Any, ...] = get(obj)
            except AttributeError:
                pass
            else:
                return values
        elif mode == _BY_DICT:
            present = obj.__dict__
            try:
                extra = obj.__pydantic_extra__ or _EMPTY
            except AttributeError:
                extra = _EMPTY
            return tuple([present[name] if name in present else extra.get(name)
                          for name in names])
        return tuple([field(obj, name) for name in names])

    return read


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping, else an empty (read-only) mapping."""
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY


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
