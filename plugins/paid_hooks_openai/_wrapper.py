"""``PaidOpenAI`` / ``PaidAsyncOpenAI``: wrappers that behave exactly like the client.

The wrapper is a transparent proxy. Along the attribute paths of the recorded methods
(``chat.completions``, ``responses``, ``embeddings``, ``images``, ``audio.transcriptions``,
``audio.speech``) it hands out resource proxies whose recorded methods run through
:func:`~paid_hooks_openai._calls.record_sync` / ``record_async``; every other attribute
(``files``, ``models``, ``batches``, ``api_key``...) is the client's own object. Results
are the SDK's own objects (streams: a faithful ``openai.Stream`` subclass, see
:mod:`paid_hooks_openai._streams`).

The SDK's helper methods (``chat.completions.stream``, ``responses.stream``) run with the
resource proxy as ``self``, so they reach the recorded ``create``; the
``with_raw_response`` / ``with_streaming_response`` views are built on the proxies too.
"""

from __future__ import annotations

import functools
import types
from typing import Any

from paid_hooks.plugin_kit import ClientProxy, SdkClientProxy
from paid_hooks_openai._calls import record_async, record_sync
from paid_hooks_openai._operations import HELPERS, METHODS, Operation

__all__ = ["PaidAsyncOpenAI", "PaidOpenAI"]

_OPERATIONS: dict[tuple[tuple[str, ...], str], Operation] = {
    (m.path, m.name): m.operation for m in METHODS
}
_NODES: frozenset[tuple[str, ...]] = frozenset(
    m.path[:i] for m in METHODS for i in range(len(m.path) + 1)
)
"""Every attribute path (from the client) that leads to a recorded method."""
_VIEWS = ("with_raw_response", "with_streaming_response")


def _recorded(original: Any, operation: Operation, asynchronous: bool) -> Any:
    """``original`` (a bound SDK method) recorded as ``operation``."""
    if asynchronous:
        @functools.wraps(original)
        async def method_async(*args: Any, **kwargs: Any) -> Any:
            return await record_async(original, args, kwargs, operation)

        return method_async

    @functools.wraps(original)
    def method(*args: Any, **kwargs: Any) -> Any:
        return record_sync(original, args, kwargs, operation)

    return method


_PATH_OPERATIONS: dict[tuple[str, ...], dict[str, Operation]] = {}
for (_path, _name), _operation in _OPERATIONS.items():
    _PATH_OPERATIONS.setdefault(_path, {})[_name] = _operation
_NO_OPERATIONS: dict[str, Operation] = {}


class _Resource(ClientProxy):
    """The client, or one of its resources, on the way to recorded methods.

    The recorded methods and child resources it hands out are kept (``_paid_cache``) and
    handed out again while the SDK returns the same resource / the same method of the same
    object, so a call does not build them anew. A recorded method is kept as
    ``(function, object, recorded)``: the SDK's bound method is handed out again while
    ``getattr`` on the SDK resource gives a method of that same function and object (a
    function patched on the class, or set on the object, after wrapping is seen at once).
    """

    __slots__ = ("_paid_async", "_paid_cache", "_paid_operations", "_paid_path")

    def __init__(self, wrapped: Any, path: tuple[str, ...] = (),
                 asynchronous: bool = False) -> None:
        super().__init__(wrapped)
        object.__setattr__(self, "_paid_path", path)
        object.__setattr__(self, "_paid_async", asynchronous)
        object.__setattr__(self, "_paid_operations", _PATH_OPERATIONS.get(path, _NO_OPERATIONS))
        object.__setattr__(self, "_paid_cache", {})

    def __getattr__(self, name: str) -> Any:
        wrapped = self._paid_wrapped
        operation = self._paid_operations.get(name)
        if operation is not None:
            original = getattr(wrapped, name)
            method = _recorded(original, operation, self._paid_async)
            if type(original) is types.MethodType:
                self._paid_cache[name] = (original.__func__, original.__self__, method)
            return method
        path = self._paid_path
        if name in HELPERS.get(path, ()):
            helper = getattr(type(wrapped), name, None)
            if callable(helper):
                return types.MethodType(helper, self)
        if (*path, name) in _NODES:
            child = getattr(wrapped, name)
            cached = self._paid_cache.get(name)
            if cached is not None and cached[0] is child:
                return cached[1]
            node = (*path, name)
            resource = _RESOURCE_CLASSES.get(node, _Resource)(child, node, self._paid_async)
            self._paid_cache[name] = (child, resource)
            return resource
        if name in _VIEWS:
            view = getattr(wrapped, name)
            try:
                return type(view)(self)
            except Exception:
                return view
        return getattr(wrapped, name)


# The attributes on the way to a recorded method are class-level properties: found without
# a failed lookup first (what reaching ``__getattr__`` costs), each answers from the cache
# in its own body (one Python call per attribute, ``client.chat.completions.create`` is
# three) and hands anything else to ``__getattr__``, which answers exactly as before.


def _child(name: str) -> property:
    """A class-level child resource ``name`` (``chat``, ``completions``...)."""

    def get(self: _Resource) -> Any:
        cached = self._paid_cache.get(name)
        if cached is not None and cached[0] is getattr(self._paid_wrapped, name):
            return cached[1]
        return _Resource.__getattr__(self, name)

    return property(get, doc=f"``{name}`` (recorded)")


def _method(name: str) -> property:
    """A class-level recorded method ``name`` (``create``...)."""

    def get(self: _Resource) -> Any:
        cached = self._paid_cache.get(name)
        if cached is not None:
            original = getattr(self._paid_wrapped, name)
            if (type(original) is types.MethodType and original.__func__ is cached[0]
                    and original.__self__ is cached[1]):
                return cached[2]
        return _Resource.__getattr__(self, name)

    return property(get, doc=f"``{name}`` (recorded)")


def _children(path: tuple[str, ...]) -> dict[str, property]:
    operations = _PATH_OPERATIONS.get(path, {})
    names = {node[-1] for node in _NODES if len(node) == len(path) + 1 and node[:-1] == path}
    getters = {name: _child(name) for name in names}
    getters.update({name: _method(name) for name in operations})
    return dict(sorted(getters.items()))


_RESOURCE_CLASSES: dict[tuple[str, ...], type[_Resource]] = {}
for _node in sorted(_NODES - {()}):
    _cls = type("_Resource", (_Resource,), {"__slots__": (), "__module__": __name__,
                                            **_children(_node)})
    _cls.__qualname__ = "_Resource"
    _RESOURCE_CLASSES[_node] = _cls


class _Root(_Resource):
    """The client itself: its recorded attributes (``chat``, ``responses``...) are
    class-level too."""

    __slots__ = ()


for _name, _property in _children(()).items():
    setattr(_Root, _name, _property)


class PaidOpenAI(SdkClientProxy, _Root):
    """Wraps an ``openai.OpenAI`` client (or ``AzureOpenAI``); records every covered call.

    Every other attribute passes through unchanged. ``with_options()`` / ``copy()`` return
    a wrapped copy.
    """

    __slots__ = ()

    def __init__(self, client: Any) -> None:
        super().__init__(client, (), asynchronous=False)


class PaidAsyncOpenAI(SdkClientProxy, _Root):
    """Wraps an ``openai.AsyncOpenAI`` client (or ``AsyncAzureOpenAI``); see :class:`PaidOpenAI`."""

    __slots__ = ()

    def __init__(self, client: Any) -> None:
        super().__init__(client, (), asynchronous=True)
