"""Observing one SDK ``Stream`` / ``AsyncStream`` of raw message events, in place.

The caller keeps the SDK's own stream object. Three things are attached to that one
instance (never to its class):

* its event iterator (``_iterator``, which ``__iter__``/``__next__`` and the
  ``MessageStream`` helpers of ``messages.stream()`` all read) is wrapped so that every
  event passes through a :class:`StreamRecorder` on its way to the caller;
* its ``close()`` records the call first (closing early = ``stream_closed_early``);
* a ``weakref.finalize`` records it when a stream that was never closed is dropped.

The recorder merges ``message_start`` and ``message_delta`` usage (later values win) and
records exactly once: at ``message_stop``, or when the stream ends, fails or is closed.
Without the final ``message_delta`` counts the call is ``usage_unknown``, never zero.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import field, field_reader, on_collect
from paid_hooks_anthropic._usage import StreamUsage

__all__ = ["CLOSED_EARLY", "StreamRecorder", "observe_async_stream", "observe_stream"]

log = logging.getLogger("paid_hooks.anthropic")

CLOSED_EARLY = "stream_closed_early"
_MESSAGE = field_reader("usage", "model", "id")


class StreamRecorder:
    """Reads one stream's events and records its call exactly once. Never raises."""

    __slots__ = ("_handle", "_lock", "_model", "_response_id", "_started", "_usage")

    def __init__(self, handle: paid_hooks.CallHandle) -> None:
        self._handle = handle
        self._lock = threading.RLock()  # a GC-time settle may re-enter: done guards it
        self._usage = StreamUsage()
        self._model: str | None = None
        self._response_id: str | None = None
        self._started = False

    def on_event(self, event: Any) -> None:
        try:
            kind = field(event, "type")
            if kind == "message_start":
                message = field(event, "message")
                usage, self._model, self._response_id = _MESSAGE(message)
                self._usage.merge(usage, final=False)
                self._started = True
            elif kind == "message_delta":
                self._usage.merge(field(event, "usage"), final=True)
            elif kind == "message_stop":
                self.settle("stream_usage_incomplete")
        except Exception:
            log.warning("paid_hooks: could not read an anthropic stream event", exc_info=True)

    def settle(self, reason: str) -> None:
        """Record now: the merged usage if the final counts arrived, else ``usage_unknown``."""
        if self._handle.done:  # recorded already (at message_stop): nothing to take a lock for
            return
        try:
            with self._lock:
                if self._handle.done:
                    return
                usage = self._usage.usage() if self._usage.final_seen else None
                if usage is not None:
                    self._handle.finish(usage, response_model=self._model,
                                        response_id=self._response_id,
                                        service_tier=self._usage.service_tier())
                else:
                    self._handle.usage_unknown(reason, response_model=self._model,
                                               response_id=self._response_id)
        except Exception:
            log.warning("paid_hooks: could not record an anthropic stream", exc_info=True)

    def failed(self, error: BaseException) -> None:
        """The stream raised: before any message it billed nothing; after, usage is unknown."""
        if self._usage.final_seen or self._started:
            self.settle("stream_error")
            return
        try:
            with self._lock:
                self._handle.fail(error)
        except Exception:
            log.warning("paid_hooks: could not record an anthropic stream", exc_info=True)


def _delta_classes() -> frozenset[type]:
    """The SDK's ``content_block_delta`` event classes: most events, and none of our business."""
    classes: set[type] = set()
    try:
        from anthropic.types import RawContentBlockDeltaEvent

        classes.add(RawContentBlockDeltaEvent)
        from anthropic.types.beta import BetaRawContentBlockDeltaEvent

        classes.add(BetaRawContentBlockDeltaEvent)
    except ImportError:
        pass
    return frozenset(classes)


_DELTAS = _delta_classes()


def _observe(events: Iterator[Any], recorder: StreamRecorder) -> Iterator[Any]:
    on_event = recorder.on_event
    deltas = _DELTAS
    try:
        for event in events:
            # a content_block_delta is skipped without a call (on_event would ignore it)
            if type(event) not in deltas or event.__dict__.get("type") != "content_block_delta":
                on_event(event)
            yield event
    except Exception as exc:
        recorder.failed(exc)
        raise
    except BaseException:  # GeneratorExit: closed or dropped unfinished
        recorder.settle(CLOSED_EARLY)
        raise
    recorder.settle(CLOSED_EARLY)


async def _observe_async(events: AsyncIterator[Any],
                         recorder: StreamRecorder) -> AsyncIterator[Any]:
    on_event = recorder.on_event
    deltas = _DELTAS
    try:
        async for event in events:
            if type(event) not in deltas or event.__dict__.get("type") != "content_block_delta":
                on_event(event)
            yield event
    except Exception as exc:
        recorder.failed(exc)
        raise
    except BaseException:  # GeneratorExit or cancelled: the caller abandoned the stream
        recorder.settle(CLOSED_EARLY)
        raise
    recorder.settle(CLOSED_EARLY)


def observe_stream(stream: Any, handle: paid_hooks.CallHandle) -> None:
    """Record ``handle`` from the events of the sync SDK ``Stream`` (in place). Never raises."""
    recorder = StreamRecorder(handle)
    try:
        events = stream._iterator
        if not hasattr(events, "__next__"):
            raise TypeError(f"unexpected stream iterator {type(events)!r}")
        close_function = type(stream).close
        ref = weakref.ref(stream)  # a closure holding the stream would keep it alive

        def close() -> None:
            recorder.settle(CLOSED_EARLY)
            target = ref()
            if target is not None:
                close_function(target)

        stream._iterator = _observe(events, recorder)
        stream.close = close
        on_collect(stream, recorder.settle, CLOSED_EARLY)
    except Exception:
        log.warning("paid_hooks: cannot observe this anthropic stream", exc_info=True)
        recorder.settle("stream_not_observable")


def observe_async_stream(stream: Any, handle: paid_hooks.CallHandle) -> None:
    """Record ``handle`` from the events of the SDK ``AsyncStream`` (in place). Never raises."""
    recorder = StreamRecorder(handle)
    try:
        events = stream._iterator
        if not hasattr(events, "__anext__"):
            raise TypeError(f"unexpected stream iterator {type(events)!r}")
        close_function = type(stream).close
        ref = weakref.ref(stream)

        async def close() -> None:
            recorder.settle(CLOSED_EARLY)
            target = ref()
            if target is not None:
                await close_function(target)

        stream._iterator = _observe_async(events, recorder)
        stream.close = close
        on_collect(stream, recorder.settle, CLOSED_EARLY)
    except Exception:
        log.warning("paid_hooks: cannot observe this anthropic stream", exc_info=True)
        recorder.settle("stream_not_observable")
