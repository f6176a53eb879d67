"""Observing one SDK ``Stream`` / ``AsyncStream`` of raw message events, in place.

The caller keeps the SDK's own stream object. Three things are attached to that one
instance (never to its class):

* its event iterator (``_iterator``, which ``__iter__``/``__next__`` and the
  ``MessageStream`` helpers of ``messages.stream()`` all read) is wrapped so that every
  event passes through a :class:`StreamRecorder` on its way to the caller;
* its ``close()`` records the call first (closing early = ``stream_closed_early``);
* a guard object kept in the stream's ``__dict__`` records it when a stream that was never
  closed is collected (see :class:`_OnCollect`).

The recorder merges ``message_start`` and ``message_delta`` usage (later values win) and
records exactly once: at ``message_stop``, or when the stream ends, fails or is closed.
Without the final ``message_delta`` counts the call is ``usage_unknown``, never zero.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import typing
import weakref
from collections.abc import AsyncIterator, Iterator
from typing import Any

import paid_hooks
from paid_hooks.plugin_kit import field, field_reader
from paid_hooks_anthropic._usage import StreamUsage

__all__ = ["CLOSED_EARLY", "StreamRecorder", "observe_async_stream", "observe_stream"]

log = logging.getLogger("paid_hooks.anthropic")

CLOSED_EARLY = "stream_closed_early"
_MESSAGE = field_reader("usage", "model", "id")


# What the recorder does with an event (see ``StreamRecorder.on_event``).
_SKIP = 0
_START = 1
_DELTA = 2
_STOP = 3
_KIND_OF_TYPE = {"message_start": _START, "message_delta": _DELTA, "message_stop": _STOP}


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

    def on_event(self, event: Any, kind: int | None = None) -> None:
        """Read one event. ``kind`` (``_START``...) when the caller knows it from the
        event's class; ``None`` to read the event's ``type``."""
        try:
            if kind is None:
                kind = _KIND_OF_TYPE.get(field(event, "type"), _SKIP)
            if kind == _START:
                usage, self._model, self._response_id = _MESSAGE(field(event, "message"))
                self._usage.merge(usage, final=False)
                self._started = True
            elif kind == _DELTA:
                self._usage.merge(field(event, "usage"), final=True)
            elif kind == _STOP:
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


class _OnCollect:
    """Kept in the observed stream's ``__dict__`` (and nowhere else), it dies with the
    stream and then records the call as closed early, unless it was recorded already.

    It does what ``weakref.finalize`` would (not at interpreter exit either) at a tenth of
    the cost (~0.3 µs instead of ~3 µs a stream: no registry, no weak reference).
    """

    __slots__ = ("_recorder",)

    def __init__(self, recorder: StreamRecorder) -> None:
        self._recorder = recorder

    def __del__(self) -> None:
        try:
            if not _is_finalizing():
                self._recorder.settle(CLOSED_EARLY)
        except BaseException:  # never raise from a finalizer
            pass


_is_finalizing = sys.is_finalizing
_COLLECT_GUARD = "_paid_hooks_on_collect"


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
        vars(stream)[_COLLECT_GUARD] = _OnCollect(recorder)
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
        vars(stream)[_COLLECT_GUARD] = _OnCollect(recorder)
    except Exception:
        log.warning("paid_hooks: cannot observe this anthropic stream", exc_info=True)
        recorder.settle("stream_not_observable")
