"""A recording view of a botocore ``EventStream`` that hands every event through untouched.

ConverseStream's ``stream`` and InvokeModelWithResponseStream's ``body`` are botocore
``EventStream`` objects (AWS binary event stream, not SSE). :class:`RecordingEventStream`
is an ``EventStream`` subclass (``isinstance`` checks still hold) that iterates the
original one, shows each parsed event to a usage accumulator, and yields the very same
event object. State and every other attribute stay with the original stream.

When the call is recorded:

* as soon as the accumulator has the final usage (ConverseStream ``metadata``, the last
  InvokeModel chunk), so a caller that stops right after it is still counted;
* when the stream is exhausted, raises, is ``close()``-d or is garbage-collected, with
  whatever usage arrived, else ``usage_unknown`` (``stream_closed_early`` /
  ``stream_error``). Leaving a ``for`` loop early does NOT record yet: an
  ``EventStream`` may be iterated again from where it stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Protocol

from botocore.eventstream import EventStream

import paid_hooks

__all__ = ["RecordingEventStream", "UsageAccumulator"]

log = logging.getLogger("paid_hooks_bedrock")


class UsageAccumulator(Protocol):
    complete: bool
    service_tier: str | None

    def observe(self, event: Any) -> None: ...

    def result(self) -> paid_hooks.Usage | None: ...


class RecordingEventStream(EventStream):  # type: ignore[misc]
    """Wraps ``inner`` (an ``EventStream``); records ``handle`` when the usage is known."""

    def __init__(self, inner: Any, handle: paid_hooks.CallHandle, usage: UsageAccumulator,
                 *, response_model: str | None, response_id: str | None) -> None:
        # EventStream.__init__ is deliberately not called: all stream state stays in inner.
        self._paid_inner = inner
        self._paid_handle = handle
        self._paid_usage = usage
        self._paid_model = response_model
        self._paid_id = response_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_paid_"):
            raise AttributeError(name)
        return getattr(self._paid_inner, name)

    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self._paid_inner:
                self._paid_observe(event)
                yield event
        except GeneratorExit:
            raise  # the caller left the loop; it may resume, so nothing is recorded yet
        except BaseException:
            self._paid_end("stream_error")
            raise
        self._paid_end("stream_closed_early")

    def get_initial_response(self) -> Any:
        return self._paid_inner.get_initial_response()

    def close(self) -> None:
        """Close the underlying stream; a call whose usage never arrived is usage_unknown."""
        self._paid_end("stream_closed_early")
        self._paid_inner.close()

    def __del__(self) -> None:
        self._paid_end("stream_closed_early")

    def _paid_observe(self, event: Any) -> None:
        try:
            self._paid_usage.observe(event)
            if self._paid_usage.complete:
                self._paid_end("stream_closed_early")
        except Exception:
            log.debug("paid_hooks_bedrock: unreadable stream event", exc_info=True)

    def _paid_end(self, reason: str) -> None:
        """Record the call once (usage if it arrived, else ``reason``). Never raises."""
        try:
            handle = self._paid_handle
            if handle.done:
                return
            try:
                usage = self._paid_usage.result()
            except Exception:
                log.debug("paid_hooks_bedrock: unreadable stream usage", exc_info=True)
                usage = None
            if usage is not None:
                handle.finish(usage, response_model=self._paid_model,
                              response_id=self._paid_id,
                              service_tier=self._paid_usage.service_tier)
            else:
                handle.usage_unknown(reason, response_model=self._paid_model,
                                     response_id=self._paid_id)
        except Exception:  # also from __del__ at interpreter shutdown: never raise
            return
