"""The pipeline worker: everything that must stay off the caller's thread.

The hot path only builds an immutable record and puts it on a queue. This worker thread
then prices each call, creates its OpenTelemetry span (with the call's own start and end
times and its captured parent context) and ends it, which hands it to the span processors:
the ledger's batch processor, an OTLP exporter, or the application's own.

Attribution travels beside the span, not only in its attributes: the worker keeps each
record in a side table keyed by span id, which the ledger exporter reads, so attribute
limits can never evict a customer id.
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Tracer

from paid_hooks import attributes as attr
from paid_hooks.context import TraceScope
from paid_hooks.model import (
    AICall,
    CallStatus,
    CostStatus,
    Price,
    PricedCall,
    SignalRecord,
    Unpriced,
)

__all__ = ["PENDING", "Pipeline"]

log = logging.getLogger("paid_hooks.pipeline")

PENDING: dict[int, PricedCall | SignalRecord] = {}
"""Side table: span id -> record, filled before a span ends, emptied by the ledger exporter."""
PENDING_LIMIT = 1_000_000


@dataclass(slots=True, frozen=True)
class _CallItem:
    call: AICall
    scope: TraceScope | None
    parent: otel_context.Context


@dataclass(slots=True, frozen=True)
class _SignalItem:
    record: SignalRecord
    scope: TraceScope | None
    parent: otel_context.Context


@dataclass(slots=True, frozen=True)
class _Barrier:
    done: threading.Event


_STOP = object()


class Pipeline:
    """A single daemon thread draining a queue of calls and signals."""

    def __init__(
        self,
        tracer: Tracer,
        price: Callable[[AICall], Price | Unpriced | None],
        observe_call: Callable[[PricedCall], None],
        observe_signal: Callable[[SignalRecord], None],
        write_unexported: Callable[[list[PricedCall | SignalRecord]], None],
    ) -> None:
        self._tracer = tracer
        self._price = price
        self._observe_call = observe_call
        self._observe_signal = observe_signal
        self._write_unexported = write_unexported
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._stopped = False
        self.processed = 0

    # -- caller side (hot path) ---------------------------------------------------------

    def submit_call(self, call: AICall, scope: TraceScope | None,
                    parent: otel_context.Context) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(_CallItem(call, scope, parent))

    def submit_signal(self, record: SignalRecord, scope: TraceScope | None,
                      parent: otel_context.Context) -> None:
        if self._thread is None:
            self._start()
        self._queue.put(_SignalItem(record, scope, parent))

    def flush(self, timeout: float) -> bool:
        """Wait until everything submitted before this call has been processed."""
        if self._thread is None or not self._thread.is_alive():
            return True
        barrier = _Barrier(threading.Event())
        self._queue.put(barrier)
        return barrier.done.wait(timeout)

    def shutdown(self, timeout: float) -> None:
        if self._thread is None:
            return
        self._stopped = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopped:
                thread = threading.Thread(target=self._run, name="paid-hooks-pipeline",
                                          daemon=True)
                thread.start()
                self._thread = thread

    # -- worker side --------------------------------------------------------------------

    def _run(self) -> None:
        # Everything this thread does (pricing, exporting) is ours: keep it out of traces.
        otel_context.attach(otel_context.set_value(
            otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            try:
                if isinstance(item, _CallItem):
                    self._process_call(item)
                elif isinstance(item, _SignalItem):
                    self._process_signal(item)
                elif isinstance(item, _Barrier):
                    item.done.set()
            except Exception:
                log.exception("paid_hooks: failed to process a record; it was dropped")
            self.processed += 1

    def _parent(self, scope: TraceScope | None,
                parent: otel_context.Context) -> otel_context.Context:
        if scope is None:
            return parent
        current = trace.get_current_span(parent).get_span_context()
        if current.is_valid and current.trace_id == scope.trace_id:
            return parent
        return trace.set_span_in_context(scope.root_span, parent)

    @staticmethod
    def _ids(span: Span, scope: TraceScope | None) -> tuple[int, int]:
        ctx = span.get_span_context()
        if ctx.is_valid:
            return ctx.trace_id, ctx.span_id
        trace_id = scope.trace_id if scope is not None else secrets.randbits(128)
        return trace_id, secrets.randbits(64)

    def _cost(self, call: AICall) -> tuple[CostStatus, Price | None, str | None]:
        if call.usage is None:
            if call.status is CallStatus.ERROR:
                return CostStatus.NO_CHARGE, None, call.error_type
            return CostStatus.USAGE_UNKNOWN, None, call.usage_unknown_reason or "not_reported"
        try:
            answer = self._price(call)
        except Exception as exc:
            log.warning("paid_hooks: a price source failed", exc_info=True)
            return CostStatus.UNPRICED, None, f"price_error:{type(exc).__name__}"
        if isinstance(answer, Price):
            return CostStatus.PRICED, answer, None
        if isinstance(answer, Unpriced):
            return CostStatus.UNPRICED, None, answer.reason
        return CostStatus.UNPRICED, None, "no_price_source"

    def _process_call(self, item: _CallItem) -> None:
        call, scope = item.call, item.scope
        status, price, reason = self._cost(call)
        model = call.model or "unknown"
        span = self._tracer.start_span(
            f"{call.operation} {model}",
            context=self._parent(scope, item.parent),
            kind=SpanKind.CLIENT,
            attributes=_call_attributes(call, status, price, reason, scope),
            start_time=call.start_time_ns,
        )
        trace_id, span_id = self._ids(span, scope)
        priced = PricedCall(
            call=call,
            trace_id=trace_id,
            span_id=span_id,
            external_customer_id=scope.external_customer_id if scope else None,
            external_agent_id=scope.external_agent_id if scope else None,
            cost_status=status,
            price=price,
            cost_reason=reason,
        )
        if call.status is CallStatus.ERROR:
            span.set_status(trace.Status(trace.StatusCode.ERROR, call.error_type))
        self._hand_over(span, priced)
        span.end(end_time=call.end_time_ns)
        self._observe_call(priced)

    def _process_signal(self, item: _SignalItem) -> None:
        record, scope = item.record, item.scope
        span = self._tracer.start_span(
            f"signal {record.event_name}",
            context=self._parent(scope, item.parent),
            kind=SpanKind.INTERNAL,
            attributes={
                attr.PAID_SIGNAL_EVENT_NAME: record.event_name,
                attr.PAID_SIGNAL_COST_TRACING: record.enable_cost_tracing,
                attr.PAID_SIGNAL_REJECTED: record.cost_tracing_rejected,
                attr.PAID_SIGNAL_IDEMPOTENCY_KEY: record.idempotency_key,
                attr.PAID_CUSTOMER_ID: record.external_customer_id,
                attr.PAID_AGENT_ID: record.external_agent_id,
            },
            start_time=record.timestamp_ns,
        )
        ctx = span.get_span_context()
        if ctx.is_valid:
            record = _replace_ids(record, ctx.trace_id, ctx.span_id)
        elif record.trace_id == 0:
            record = _replace_ids(record, secrets.randbits(128), secrets.randbits(64))
        self._hand_over(span, record)
        span.end(end_time=record.timestamp_ns)
        self._observe_signal(record)

    def _hand_over(self, span: Span, record: PricedCall | SignalRecord) -> None:
        if span.is_recording():
            if len(PENDING) >= PENDING_LIMIT:
                log.warning("paid_hooks: ledger exporter is not keeping up; side table full")
                PENDING.clear()
            span_id = record.span_id
            PENDING[span_id] = record
        else:
            # A sampler dropped the span (or the SDK is disabled): billing must not depend
            # on sampling, so the record goes straight to the ledger.
            self._write_unexported([record])


def _replace_ids(record: SignalRecord, trace_id: int, span_id: int) -> SignalRecord:
    from dataclasses import replace

    return replace(record, trace_id=trace_id, span_id=span_id)


def _call_attributes(call: AICall, status: CostStatus, price: Price | None,
                     reason: str | None, scope: TraceScope | None) -> dict[str, Any]:
    a: dict[str, Any] = {
        attr.GEN_AI_OPERATION_NAME: call.operation,
        attr.GEN_AI_PROVIDER_NAME: call.provider,
        attr.GEN_AI_REQUEST_STREAM: call.streaming,
        attr.PAID_CAPTURED_BY: call.captured_by,
    }
    if call.request_model:
        a[attr.GEN_AI_REQUEST_MODEL] = call.request_model
    if call.response_model:
        a[attr.GEN_AI_RESPONSE_MODEL] = call.response_model
    if call.response_id:
        a[attr.GEN_AI_RESPONSE_ID] = call.response_id
    if call.error_type:
        a["error.type"] = call.error_type
    usage = call.usage
    if usage is not None:
        a[attr.GEN_AI_USAGE_INPUT_TOKENS] = usage.input_tokens
        a[attr.GEN_AI_USAGE_OUTPUT_TOKENS] = usage.output_tokens
        if usage.cache_read_tokens is not None:
            a[attr.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = usage.cache_read_tokens
        if usage.cache_write_tokens is not None:
            a[attr.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = usage.cache_write_tokens
        if usage.reasoning_tokens is not None:
            a[attr.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = usage.reasoning_tokens
        a[attr.PAID_USAGE_JSON] = usage.to_json()
    a[attr.PAID_COST_STATUS] = status.value
    if price is not None:
        a[attr.GEN_AI_USAGE_COST_AMOUNT] = float(price.amount)
        a[attr.GEN_AI_USAGE_COST_CURRENCY] = price.currency
        a[attr.GEN_AI_USAGE_COST_SOURCE] = price.source
        a[attr.PAID_COST_USD] = str(price.amount)
        a[attr.PAID_PRICE_SOURCE] = price.price_source
    if reason:
        a[attr.PAID_COST_REASON] = reason
    # Attribution last: attribute limits evict the oldest attributes first.
    if scope is not None:
        a[attr.PAID_CUSTOMER_ID] = scope.external_customer_id
        a[attr.PAID_AGENT_ID] = scope.external_agent_id
    return a
