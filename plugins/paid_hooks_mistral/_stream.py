"""Streams that behave like the SDK's ``EventStream`` and record the call once.

Mistral sends the usage on the final chunk (no ``stream_options`` needed); the call is
recorded as soon as that chunk is read, so a caller that stops right after it still
gets a priced row. A stream that ends, is closed, fails or is garbage-collected before
the usage arrived is recorded as ``usage_unknown`` (the provider billed it anyway).
"""

from __future__ import annotations

import logging
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import as_str, on_collect
from paid_hooks_mistral._usage import chat_usage, get

__all__ = ["RecordedAsyncStream", "RecordedStream"]

log = logging.getLogger("paid_hooks.mistral")


class _Tracker:
    """What a stream has shown so far; records the call once. Never raises."""

    __slots__ = ("finished", "handle", "model", "response_id")

    def __init__(self, handle: paid_hooks.CallHandle) -> None:
        self.handle = handle
        self.model: str | None = None
        self.response_id: str | None = None
        self.finished = False
        """A chunk with a ``finish_reason`` was seen (the generation ended)."""

    def observe(self, event: Any) -> None:
        if self.handle.done:
            return
        try:
            chunk = get(event, "data")
            self.model = as_str(get(chunk, "model")) or self.model
            self.response_id = as_str(get(chunk, "id")) or self.response_id
            for choice in get(chunk, "choices") or ():
                if get(choice, "finish_reason") is not None:
                    self.finished = True
            usage = get(chunk, "usage")
            if usage is not None:
                self.handle.finish(chat_usage(usage), response_model=self.model,
                                   response_id=self.response_id,
                                   service_tier=as_str(get(usage, "service_tier")))
        except Exception:
            log.warning("paid_hooks: could not read a Mistral stream chunk", exc_info=True)
            self.unknown("unreadable_response")

    def unknown(self, reason: str) -> None:
        try:
            self.handle.usage_unknown(reason, response_model=self.model,
                                      response_id=self.response_id)
        except Exception:
            log.debug("paid_hooks: could not record a Mistral stream", exc_info=True)

    def ended(self) -> None:
        """The stream was read to its end."""
        self.unknown("not_reported" if self.finished else "stream_closed_early")

    def closed(self) -> None:
        """Closed, failed or collected: whatever has not been recorded never will be."""
        self.unknown("stream_closed_early")


class _RecordedStreamBase:
    """The SDK stream and its tracker; every attribute not overridden passes through."""

    def __init__(self, stream: Any, handle: paid_hooks.CallHandle) -> None:
        self._paid_stream = stream
        self._paid_tracker = _Tracker(handle)
        on_collect(self, self._paid_tracker.closed)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_paid_"):
            raise AttributeError(name)
        return getattr(self._paid_stream, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._paid_stream!r})"


class RecordedStream(_RecordedStreamBase):
    """Wraps ``EventStream[CompletionEvent]``; every other attribute passes through."""

    def __iter__(self) -> RecordedStream:
        return self

    def __next__(self) -> Any:
        try:
            event = next(self._paid_stream)
        except StopIteration:
            self._paid_tracker.ended()
            raise
        except BaseException:
            self._paid_tracker.closed()
            raise
        self._paid_tracker.observe(event)
        return event

    def __enter__(self) -> RecordedStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._paid_stream.close()
        finally:
            self._paid_tracker.closed()


class RecordedAsyncStream(_RecordedStreamBase):
    """Wraps ``EventStreamAsync[CompletionEvent]``; every other attribute passes through."""

    def __aiter__(self) -> RecordedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self._paid_stream.__anext__()
        except StopAsyncIteration:
            self._paid_tracker.ended()
            raise
        except BaseException:
            self._paid_tracker.closed()
            raise
        self._paid_tracker.observe(event)
        return event

    async def __aenter__(self) -> RecordedAsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._paid_stream.close()
        finally:
            self._paid_tracker.closed()
