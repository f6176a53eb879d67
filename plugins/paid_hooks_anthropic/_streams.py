"""Observing one SDK ``Stream`` / ``AsyncStream`` of raw message events, in place.

The caller keeps the SDK's own stream object. Two things are attached to that one
instance (never to its class), both leading to one :class:`StreamRecorder`:

* its event iterator (``_iterator``, which ``__iter__``/``__next__`` and the
  ``MessageStream`` helpers of ``messages.stream()`` all read) is wrapped so that every
  event passes through the recorder on its way to the caller;
* its ``close`` becomes a method of the recorder that records the call first (closing
  early = ``stream_closed_early``), then runs the class's ``close``. Kept only by the
  stream, the recorder dies with it and then records a stream that was never closed
  (its ``__del__``).

The recorder merges ``message_start`` and ``message_delta`` usage (later values win) and
records exactly once: at ``message_stop``, or when the stream ends, fails or is closed.
Without the final ``message_delta`` counts the call is ``usage_unknown``, never zero.

Per stream this costs one recorder, its bound ``close``, one weak reference and one
generator: no lock (the handle records once, and nothing here needs more than that), no
closure cells, no separate collection guard, no usage read before the call is recorded.
Content events (most of a stream) cost one set lookup each.
"""

from __future__ import annotations

import importlib
import logging
import sys
import typing
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import field, field_reader
from paid_hooks_anthropic._usage import StreamUsage, merged_usage_and_tier

__all__ = ["CLOSED_EARLY", "AsyncStreamRecorder", "StreamRecorder", "observe_async_stream",
           "observe_stream", "stream_reading"]

log = logging.getLogger("paid_hooks.anthropic")

CLOSED_EARLY = "stream_closed_early"
_MESSAGE = field_reader("usage", "model", "id")


# What the recorder does with an event (see ``StreamRecorder.on_event``).
_SKIP = 0
_START = 1
_DELTA = 2
_STOP = 3
_KIND_OF_TYPE = {"message_start": _START, "message_delta": _DELTA, "message_stop": _STOP}

_is_finalizing = sys.is_finalizing


class StreamRecorder(StreamUsage):
    """Reads one stream's events and records its call exactly once. Never raises.

    Observing a stream (:func:`observe_stream`), its :meth:`close_stream` stands in for
    the stream's ``close`` and, kept by the stream only, it records a stream that is
    collected unclosed (``__del__``, not at interpreter exit): what a closure and a
    separate guard object did, in one object.
    """

    __slots__ = ("_handle", "_message", "_settled", "_started", "_stream")

    def __init__(self, handle: paid_hooks.CallHandle) -> None:
        self._handle = handle
        self._reported = None
        self.final_seen = False
        self._message: Any = None
        """``message_start``'s message (its usage, model and id are read on the worker)."""
        self._started = False
        self._settled = False
        """True once the call was handed to the handle (which records it once)."""
        self._stream: weakref.ref[Any] | None = None
        """The observed stream, weakly (a strong reference would keep it alive)."""

    def on_event(self, event: Any, kind: int | None = None) -> None:
        """Read one event. ``kind`` (``_START``...) when the caller knows it from the
        event's class (an SDK model: its fields are read as attributes); ``None`` to read
        the event's ``type`` (any object, a dict too)."""
        try:
            known = kind is not None
            if not known:
                kind = _KIND_OF_TYPE.get(field(event, "type"), _SKIP)
            if kind == _START:
                self._message = (getattr(event, "message", None) if known
                                 else field(event, "message"))
                self._started = True
            elif kind == _DELTA:
                self.merge(getattr(event, "usage", None) if known else field(event, "usage"),
                           final=True)
            elif kind == _STOP:
                self.settle("stream_usage_incomplete")
        except Exception:
            log.warning("paid_hooks: could not read an anthropic stream event", exc_info=True)

    def settle(self, reason: str) -> None:
        """Record now, reading later (:func:`stream_reading`, on the pipeline worker): the
        merged usage if the final counts arrived, else ``usage_unknown(reason)``.

        Without a lock: the handle records once whoever calls first (a close on another
        thread, or a collection that runs this again from inside it, finds it done).
        ``_settled`` (set once it was) only spares the callers at the stream's end a call.
        """
        handle = self._handle
        if handle.done:
            self._settled = True
            return
        try:
            deltas = self._reported
            handle.finish_later(stream_reading, (
                self._message, tuple(deltas) if self.final_seen and deltas else None, reason))
            self._settled = True
        except Exception:
            log.warning("paid_hooks: could not record an anthropic stream", exc_info=True)

    def failed(self, error: BaseException) -> None:
        """The stream raised: before any message it billed nothing; after, usage is unknown."""
        if self.final_seen or self._started:
            self.settle("stream_error")
            return
        try:
            self._handle.fail(error)
            self._settled = True
        except Exception:
            log.warning("paid_hooks: could not record an anthropic stream", exc_info=True)

    def close_stream(self) -> None:
        """The observed stream's ``close()`` (bound, set on the stream): record (closed
        early), then run the stream class's own ``close``."""
        self.settle(CLOSED_EARLY)
        stream = self._stream() if self._stream is not None else None
        if stream is not None:
            type(stream).close(stream)

    def __del__(self) -> None:
        try:
            if not self._settled and not _is_finalizing():
                self.settle(CLOSED_EARLY)
        except BaseException:  # never raise from a finalizer
            pass


def stream_reading(source: tuple[Any, tuple[Any, ...] | None, str]) -> paid_hooks.CallReading:
    """What a stream reported (run on the pipeline worker): ``source`` is (the
    ``message_start`` message or None, the ``message_delta`` usage objects, None unless
    the final counts arrived, the reason to record without them). The usage merges the
    message's usage and the deltas' (later values win)."""
    message, deltas, reason = source
    usage = model = response_id = None
    if message is not None:
        usage, model, response_id = _MESSAGE(message)
    if deltas is None:
        return paid_hooks.CallReading(None, model, response_id, None, reason)
    merged, tier = merged_usage_and_tier(deltas if usage is None else (usage, *deltas))
    return paid_hooks.CallReading(merged, model, response_id, tier, reason)


class AsyncStreamRecorder(StreamRecorder):
    """:class:`StreamRecorder` of an ``AsyncStream``: :meth:`close_async_stream` stands in
    for the stream's ``close`` (awaited)."""

    __slots__ = ()

    async def close_async_stream(self) -> None:
        """The observed stream's ``close()`` (bound, set on the stream; a coroutine
        function, as the class's): record (closed early), then await the class's own."""
        self.settle(CLOSED_EARLY)
        stream = self._stream() if self._stream is not None else None
        if stream is not None:
            await type(stream).close(stream)


def _event_kinds() -> dict[type, int]:
    """The SDK's raw stream event classes (plain and beta) -> what the recorder does with
    their instances.

    Each class declares its ``type`` as one literal, the discriminator the SDK picks the
    class by, so the class tells the event's type without reading it: the ~20
    ``content_block_delta`` events of a typical stream then cost one set lookup each. A
    class whose ``type`` is not that one literal is left out (read as any other object).
    """
    names = {"RawMessageStartEvent": ("message_start", _START),
             "RawMessageDeltaEvent": ("message_delta", _DELTA),
             "RawMessageStopEvent": ("message_stop", _STOP),
             "RawContentBlockStartEvent": ("content_block_start", _SKIP),
             "RawContentBlockDeltaEvent": ("content_block_delta", _SKIP),
             "RawContentBlockStopEvent": ("content_block_stop", _SKIP)}
    kinds: dict[type, int] = {}
    for module_name, prefix in (("anthropic.types", ""), ("anthropic.types.beta", "Beta")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        for name, (event_type, kind) in names.items():
            cls = getattr(module, prefix + name, None)
            try:
                annotation = cls.model_fields["type"].annotation  # type: ignore[union-attr]
            except (AttributeError, KeyError, TypeError):
                continue
            if (typing.get_origin(annotation) is typing.Literal
                    and typing.get_args(annotation) == (event_type,)):
                kinds[cls] = kind  # type: ignore[index]
    return kinds


_EVENT_KINDS = _event_kinds()
_SKIPPED = frozenset(cls for cls, kind in _EVENT_KINDS.items() if kind == _SKIP)
"""The content block event classes: most of a stream's events, none of the recorder's business."""


def _observe(events: Iterator[Any], recorder: StreamRecorder) -> Iterator[Any]:
    on_event = recorder.on_event
    kinds = _EVENT_KINDS
    skipped = _SKIPPED
    try:
        for event in events:
            # an SDK event is classified by its class: a content block costs one set lookup
            if type(event) not in skipped:
                on_event(event, kinds.get(type(event)))
            yield event
    except Exception as exc:
        recorder.failed(exc)
        raise
    except BaseException:  # GeneratorExit: closed or dropped unfinished
        recorder.settle(CLOSED_EARLY)
        raise
    if not recorder._settled:  # recorded at message_stop, as a rule: no call then
        recorder.settle(CLOSED_EARLY)


async def _observe_async(events: AsyncIterator[Any],
                         recorder: StreamRecorder) -> AsyncIterator[Any]:
    on_event = recorder.on_event
    kinds = _EVENT_KINDS
    skipped = _SKIPPED
    try:
        async for event in events:
            if type(event) not in skipped:
                on_event(event, kinds.get(type(event)))
            yield event
    except Exception as exc:
        recorder.failed(exc)
        raise
    except BaseException:  # GeneratorExit or cancelled: the caller abandoned the stream
        recorder.settle(CLOSED_EARLY)
        raise
    if not recorder._settled:  # recorded at message_stop, as a rule: no call then
        recorder.settle(CLOSED_EARLY)


def observe_stream(stream: Any, handle: paid_hooks.CallHandle) -> None:
    """Record ``handle`` from the events of the sync SDK ``Stream`` (in place). Never raises."""
    recorder = StreamRecorder(handle)
    try:
        events = stream._iterator
        if not hasattr(events, "__next__"):
            raise TypeError(f"unexpected stream iterator {type(events)!r}")
        recorder._stream = weakref.ref(stream)
        stream._iterator = _observe(events, recorder)
        stream.close = recorder.close_stream
    except Exception:
        log.warning("paid_hooks: cannot observe this anthropic stream", exc_info=True)
        recorder.settle("stream_not_observable")


def observe_async_stream(stream: Any, handle: paid_hooks.CallHandle) -> None:
    """Record ``handle`` from the events of the SDK ``AsyncStream`` (in place). Never raises."""
    recorder = AsyncStreamRecorder(handle)
    try:
        events = stream._iterator
        if not hasattr(events, "__anext__"):
            raise TypeError(f"unexpected stream iterator {type(events)!r}")
        recorder._stream = weakref.ref(stream)
        stream._iterator = _observe_async(events, recorder)
        stream.close = recorder.close_async_stream
    except Exception:
        log.warning("paid_hooks: cannot observe this anthropic stream", exc_info=True)
        recorder.settle("stream_not_observable")
