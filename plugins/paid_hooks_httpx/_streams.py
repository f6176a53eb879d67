"""The stream tee: a response body stream that passes every chunk through unchanged.

``response.stream`` is replaced by a tee around the original stream. Iterating the tee
yields exactly the chunks of the original, at the moment the original yields them (the
caller's stream is neither consumed nor delayed), and hands each chunk to a
:class:`~paid_hooks_httpx._recorder.BodyTap` first. Exhaustion, ``close()``/``aclose()``
and read errors are reported to the tap, which records the call once.

httpx and httpx2 check ``isinstance(response.stream, SyncByteStream/AsyncByteStream)``
with their own classes, so the tee classes are built per module (:func:`tee_classes`).
Unknown attributes are forwarded to the original stream (httpx2 reads the response's
``elapsed`` from ``response.stream.elapsed``). A tee finalised before its body ended or
was closed hands its tap to :func:`~paid_hooks_httpx._recorder.orphaned`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from types import ModuleType
from typing import Any

from paid_hooks_httpx._per_module import per_module
from paid_hooks_httpx._recorder import BodyTap, orphaned

__all__ = ["tee_classes"]


def _collected(tee: Any) -> None:
    """A tee is being finalised: hand an unrecorded tap over (no locks, no recording)."""
    try:  # noqa: SIM105 (runs for every response: a bare try costs nothing, suppress() does)
        orphaned(tee._tap)  # not ``__dict__``: reading it would build a dict object
    except Exception:
        pass


class _Tee:
    """What both tees share: the wrapped stream, its tap, attribute pass-through."""

    def __init__(self, inner: Any, tap: BodyTap) -> None:
        self._inner = inner
        self._tap = tap

    def __getattr__(self, name: str) -> Any:
        if name in ("_inner", "_tap"):
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __del__(self) -> None:
        _collected(self)


@per_module
def tee_classes(mod: ModuleType) -> tuple[type, type]:
    """``(SyncTee, AsyncTee)`` subclassing ``mod.SyncByteStream`` / ``mod.AsyncByteStream``."""

    class SyncTee(_Tee, mod.SyncByteStream):  # type: ignore[misc, name-defined]
        """Yields the wrapped stream's chunks unchanged; feeds a copy to the tap."""

        def __iter__(self) -> Iterator[bytes]:
            tap = self._tap
            try:
                for chunk in self._inner:
                    tap.feed(chunk)
                    yield chunk
            except Exception as exc:
                tap.error(exc)
                raise
            tap.end()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._tap.close()

    class AsyncTee(_Tee, mod.AsyncByteStream):  # type: ignore[misc, name-defined]
        """Async twin of ``SyncTee``."""

        async def __aiter__(self) -> AsyncIterator[bytes]:
            tap = self._tap
            iterator = self._inner.__aiter__()
            try:
                async for chunk in iterator:
                    tap.feed(chunk)
                    yield chunk
            except Exception as exc:
                tap.error(exc)
                raise
            else:
                tap.end()
            finally:
                if isinstance(iterator, AsyncGenerator):
                    await iterator.aclose()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._tap.close()

    SyncTee.__qualname__ = SyncTee.__name__ = f"PaidSyncTee[{mod.__name__}]"
    AsyncTee.__qualname__ = AsyncTee.__name__ = f"PaidAsyncTee[{mod.__name__}]"
    return SyncTee, AsyncTee

