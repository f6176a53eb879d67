"""The span exporter that writes the ledger, run behind a batch span processor."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from paid_hooks import _pipeline
from paid_hooks.attributes import SCOPE_NAME
from paid_hooks.ledger._common import CALL_COLUMNS, SQLLedger
from paid_hooks.model import PricedCall, SignalRecord

__all__ = ["LedgerSink", "LedgerSpanExporter", "OwnSpansBatchProcessor", "RowWriter"]

RowWriter = tuple[Callable[[PricedCall], tuple[Any, ...]],
                  Callable[[SignalRecord], tuple[Any, ...]],
                  Callable[[list[Any], list[tuple[Any, ...]]], None]]
"""``(call_row, signal_row, write_rows)``: see :meth:`LedgerSpanExporter.row_writer`."""

log = logging.getLogger("paid_hooks.ledger")


class LedgerSink(Protocol):
    def write(self, calls: Sequence[PricedCall], signals: Sequence[SignalRecord]) -> None: ...


class LedgerSpanExporter(SpanExporter):
    """Writes the records behind this library's spans into a ledger; never raises."""

    def __init__(self, ledger: LedgerSink) -> None:
        self.ledger = ledger
        self.failed_batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        calls: list[PricedCall] = []
        signals: list[SignalRecord] = []
        for span in spans:
            if span.context is None:
                continue
            record = _pipeline.PENDING.pop(span.context.span_id, None)
            if isinstance(record, PricedCall):
                calls.append(record)
            elif isinstance(record, SignalRecord):
                signals.append(record)
        return self.write(calls, signals)

    def write(self, calls: Sequence[PricedCall],
              signals: Sequence[SignalRecord]) -> SpanExportResult:
        try:
            self.ledger.write(calls, signals)
        except Exception:
            self.failed_batches += 1
            log.exception("paid_hooks: could not write %d calls and %d signals to the ledger",
                          len(calls), len(signals))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def write_records(self, records: Sequence[PricedCall | SignalRecord]) -> None:
        self.write([r for r in records if isinstance(r, PricedCall)],
                   [r for r in records if isinstance(r, SignalRecord)])

    def row_writer(self) -> RowWriter | None:
        """How to write this ledger by rows: ``(call_row, signal_row, write_rows)``, or
        ``None`` when the ledger is not one of ours, or its ``write`` is not the one rows
        stand for (records go through :meth:`write` then).

        ``write_rows(calls, signals)`` takes rows made by the two builders, the call rows
        flat (their values one row after another in one list: ``SQLLedger.write_rows``
        with ``flat_calls``), writes them in one transaction and never raises (a failure
        is logged and counted, as in :meth:`write`).
        """
        ledger = self.ledger
        if not isinstance(ledger, SQLLedger) or getattr(
                ledger.write, "__func__", None) is not SQLLedger.write:
            return None  # not ours, or its write() replaced: every record goes through it
        call_row, signal_row = ledger.row_builders()
        write_rows = ledger.write_rows

        width = len(CALL_COLUMNS)

        def write(calls: list[Any], signals: list[tuple[Any, ...]]) -> None:
            try:
                write_rows(calls, signals, flat_calls=True)
            except Exception:
                self.failed_batches += 1
                log.exception("paid_hooks: could not write %d calls and %d signals to the "
                              "ledger", len(calls) // width, len(signals))

        return call_row, signal_row, write

    def shutdown(self) -> None:
        close = getattr(self.ledger, "close", None)
        if close is not None:
            close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OwnSpansBatchProcessor(BatchSpanProcessor):
    """A batch processor that only takes this library's own spans.

    Added to an application's tracer provider, it ignores every other span cheaply. In
    front of a :class:`LedgerSpanExporter` it takes only the spans that carry a ledger
    record (so not the ``paid.trace`` root spans), and it says so through its
    ``paid_hooks_ledger_exporter`` attribute: the pipeline builds no span at all when
    every processor of its tracer is such a ledger processor (see :mod:`paid_hooks._pipeline`).
    """

    def __init__(self, span_exporter: SpanExporter, *args: Any, **kwargs: Any) -> None:
        super().__init__(span_exporter, *args, **kwargs)
        self.paid_hooks_ledger_exporter: LedgerSpanExporter | None = (
            span_exporter if isinstance(span_exporter, LedgerSpanExporter) else None)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        scope = span.instrumentation_scope
        if scope is None or scope.name != SCOPE_NAME:
            return
        if self.paid_hooks_ledger_exporter is not None:
            context = span.context
            if context is None or context.span_id not in _pipeline.PENDING:
                return  # no ledger record behind it: nothing for the ledger to write
        super().on_end(span)
