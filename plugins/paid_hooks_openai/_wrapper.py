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


class _Resource(ClientProxy):
    """The client, or one of its resources, on the way to recorded methods."""

    __slots__ = ("_paid_async", "_paid_path")

    def __init__(self, wrapped: Any, path: tuple[str, ...] = (),
                 asynchronous: bool = False) -> None:
        super().__init__(wrapped)
        object.__setattr__(self, "_paid_path", path)
        object.__setattr__(self, "_paid_async", asynchronous)

    def __getattr__(self, name: str) -> Any:
        wrapped = self._paid_wrapped
        path = self._paid_path
        operation = _OPERATIONS.get((path, name))
        if operation is not None:
            return _recorded(getattr(wrapped, name), operation, self._paid_async)
        if name in HELPERS.get(path, ()):
            helper = getattr(type(wrapped), name, None)
            if callable(helper):
                return types.MethodType(helper, self)
        if (*path, name) in _NODES:
            return _Resource(getattr(wrapped, name), (*path, name), self._paid_async)
        if name in _VIEWS:
            view = getattr(wrapped, name)
            try:
                return type(view)(self)
            except Exception:
                return view
        return getattr(wrapped, name)


class PaidOpenAI(SdkClientProxy, _Resource):
    """Wraps an ``openai.OpenAI`` client (or ``AzureOpenAI``); records every covered call.

    Every other attribute passes through unchanged. ``with_options()`` / ``copy()`` return
    a wrapped copy.
    """

    __slots__ = ()

    def __init__(self, client: Any) -> None:
        super().__init__(client, (), asynchronous=False)


class PaidAsyncOpenAI(SdkClientProxy, _Resource):
    """Wraps an ``openai.AsyncOpenAI`` client (or ``AsyncAzureOpenAI``); see :class:`PaidOpenAI`."""

    __slots__ = ()

    def __init__(self, client: Any) -> None:
        super().__init__(client, (), asynchronous=True)
