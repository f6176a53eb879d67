"""Cheap regression guards for the hot path (the benchmark itself is benchmarks/run.py).

No wall-clock assertion here: these tests check WHAT runs where, and how much the caller
allocates, which stays true on a loaded machine.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import paid_hooks
from paid_hooks import Usage, _runtime, hookimpl, paid_tracing, signal, start_call
from paid_hooks import _pipeline as pipeline_module
from paid_hooks._plugins import get_plugin_manager
from paid_hooks.testing import temporary_ledger

_IMPORT_PROBE = """
import socket, sys
def refuse(*args, **kwargs):
    raise RuntimeError("network during import")
socket.socket = refuse
socket.create_connection = refuse
import paid_hooks
print(sorted(m for m in sys.modules if m.split(".")[0] in ("genai_prices", "openai",
                                                             "anthropic", "langchain_core")))
"""


def test_import_loads_no_price_table_no_sdk_and_opens_no_socket():
    out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def _one_call(i: int = 0) -> None:
    handle = start_call(provider="openai", operation="chat", request_model="gpt-4o-mini",
                        captured_by="guard")
    with handle.exclusive():
        pass
    handle.finish(Usage(input_tokens=1200 + i, output_tokens=300, cache_read_tokens=200),
                  response_model="gpt-4o-mini-2024-07-18", response_id=f"resp-{i}")


class ThreadRecorder:
    """A price source that answers nothing and notes the thread it ran on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    @hookimpl(tryfirst=True)
    def price_call(self, call: Any) -> None:
        self.threads.append(threading.get_ident())


def test_pricing_and_span_building_never_run_on_the_caller_thread(tmp_path, monkeypatch):
    recorder = ThreadRecorder()
    pm = get_plugin_manager()
    pm.register(recorder, name="thread-recorder")
    started_on: list[int] = []
    try:
        with temporary_ledger(tmp_path) as ledger:
            tracer = _runtime.get_runtime().tracer
            real_start_span = tracer.start_span

            def watched_start_span(name: str, *args: Any, **kwargs: Any) -> Any:
                if name != "paid.trace":  # the trace's root span is the caller's, by design
                    started_on.append(threading.get_ident())
                return real_start_span(name, *args, **kwargs)

            monkeypatch.setattr(tracer, "start_span", watched_start_span)
            with paid_tracing("acme", external_agent_id="sdr"):
                for i in range(20):
                    _one_call(i)
                signal("done", enable_cost_tracing=True)
            rows = ledger.calls()
    finally:
        pm.unregister(name="thread-recorder")
    assert len(rows) == 20 and {r["cost_status"] for r in rows} == {"priced"}
    caller = threading.get_ident()
    assert len(recorder.threads) == 20
    assert caller not in recorder.threads
    assert caller not in started_on


def test_the_caller_hands_over_only_the_immutable_record(tmp_path, monkeypatch):
    """start_call/finish build the record and queue it: no pricing, no span, no I/O."""
    with temporary_ledger(tmp_path):
        runtime = _runtime.get_runtime()
        handed: list[tuple[Any, ...]] = []
        monkeypatch.setattr(runtime.pipeline, "submit_call",
                            lambda call, scope, parent: handed.append((call, scope, parent)))
        with paid_tracing("acme", external_agent_id="sdr"):
            _one_call()
    [(call, scope, _parent)] = handed
    assert type(call) is paid_hooks.AICall and call.usage.input_tokens == 1200
    assert scope is not None and scope.external_customer_id == "acme"


def test_the_caller_path_keeps_a_bounded_number_of_blocks_per_call(tmp_path, monkeypatch):
    """What a call leaves for the worker: its AICall, its Usage and a few strings (3
    blocks, ~230 bytes today). A regression that attaches prices, spans or serialised
    payloads to the queued record, or keeps per-call state in the core, shows up here."""
    with temporary_ledger(tmp_path):
        runtime = _runtime.get_runtime()
        kept: list[Any] = []
        monkeypatch.setattr(runtime.pipeline, "submit_call",
                            lambda call, scope, parent: kept.append(call))
        with paid_tracing("acme", external_agent_id="sdr"):
            _one_call()  # warm every lazy path first
            calls = 500
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot()
                for i in range(calls):
                    _one_call(i)
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()
    core = str(Path(paid_hooks.__file__).parent)
    grown = [s for s in after.compare_to(before, "filename")
             if s.traceback[0].filename.startswith(core)]
    blocks = sum(s.count_diff for s in grown)
    size = sum(s.size_diff for s in grown)
    # Retained per call: the AICall and its Usage (kept by the stub) and its response id.
    assert blocks / calls <= 6, grown
    assert size / calls <= 600, grown


def test_ledger_only_set_up_writes_the_same_rows_without_building_spans(tmp_path):
    """The default set-up (only the ledger sees spans) skips span building; rows match the
    rows written through real spans when another processor needs them."""

    def record(provider: TracerProvider | None, directory: Path) -> list[dict[str, Any]]:
        settings: dict[str, Any] = {} if provider is None else {"tracer_provider": provider}
        with temporary_ledger(directory, **settings) as ledger:
            with paid_tracing("acme", external_agent_id="sdr"):
                for i in range(3):
                    _one_call(i)
                handle = start_call(provider="openai", operation="chat",
                                    request_model="gpt-4o-mini", captured_by="guard")
                handle.fail(RuntimeError("boom"))
                signal("done", enable_cost_tracing=True)
            return ledger.calls() + [dict(s, kind="signal") for s in ledger.signals()]

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with_spans = record(provider, tmp_path / "spans")
    assert len([s for s in exporter.get_finished_spans() if s.name != "paid.trace"]) == 5
    direct = record(None, tmp_path / "direct")

    def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ignored = {"id", "span_id", "trace_id", "started_at", "duration_ms", "created_at",
                   "idempotency_key", "dedupe_key"}
        return [{k: v for k, v in row.items() if k not in ignored} for row in rows]

    assert comparable(direct) == comparable(with_spans)
    # one trace id for the whole trace, calls and signal alike, in both set-ups
    for rows in (direct, with_spans):
        assert len({r["trace_id"] for r in rows}) == 1


@pytest.mark.parametrize("count", [1, 2, 255, 256, 257, 700, 1057, 2200])
def test_sqlite_multi_row_insert_keeps_executemany_semantics(tmp_path, count):
    """Rows go in with multi-row statements (one GIL release per statement, not per row);
    duplicates within one batch still keep the richest row, as executemany did."""
    from paid_hooks.ledger import open_ledger

    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    records = []
    for i in range(count):
        usage = Usage(input_tokens=10, output_tokens=1) if i % 2 else None
        call = paid_hooks.AICall("openai", "chat", "gpt-4o-mini", None, usage, "guard", i, i + 1,
                                 response_id=f"resp-{i // 2}")
        status = paid_hooks.CostStatus.PRICED if usage else paid_hooks.CostStatus.USAGE_UNKNOWN
        records.append(paid_hooks.PricedCall(call, 1, i + 1, "acme", "sdr", status))
    ledger.write(records, [])
    rows = ledger.calls()
    assert len(rows) == (count + 1) // 2
    assert all(r["cost_status"] == "priced" for r in rows[: count // 2])
    assert pipeline_module.DIRECT_WRITE_BATCH >= 256


class GatedPricing:
    """A price source that waits for a gate before answering (a stalled worker)."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    @hookimpl(tryfirst=True)
    def price_call(self, call: Any) -> None:
        self.gate.wait(10)


def test_a_producer_outrunning_the_worker_yields_to_it_and_loses_nothing(tmp_path,
                                                                         monkeypatch):
    """Back-pressure instead of unbounded memory: above HIGH_WATER waiting records the
    recording thread yields to the worker; every record is still written."""
    monkeypatch.setattr(pipeline_module, "HIGH_WATER", 20)
    monkeypatch.setattr(pipeline_module, "WAKE_AT", 10)
    monkeypatch.setattr(pipeline_module, "YIELD_S", 0.0)
    gated = GatedPricing()
    pm = get_plugin_manager()
    pm.register(gated, name="gated-pricing")
    try:
        with temporary_ledger(tmp_path) as ledger:
            pipeline = _runtime.get_runtime().pipeline
            with paid_tracing("acme", external_agent_id="sdr"):
                for i in range(100):
                    _one_call(i)
                signal("done", enable_cost_tracing=True)
            waiting = pipeline.waiting
            assert waiting > 20 and pipeline.yields >= waiting - 20
            gated.gate.set()
            paid_hooks.flush(30)
            rows = ledger.calls()
            [sig] = ledger.signals()
    finally:
        pm.unregister(name="gated-pricing")
    assert len(rows) == 100 and {r["cost_status"] for r in rows} == {"priced"}
    assert sig["ai_calls"] == 100


def test_recording_a_signal_makes_no_system_call_for_its_key(tmp_path, monkeypatch):
    """The default idempotency key comes from the ``random`` module, not ``os.urandom``
    (a system call hands the GIL to other threads); keys stay distinct 128-bit hex."""
    import os

    def refuse(n: int) -> bytes:
        raise AssertionError("os.urandom on the caller's thread")

    with temporary_ledger(tmp_path) as ledger:
        monkeypatch.setattr(os, "urandom", refuse)
        records = []
        for i in range(50):
            with paid_tracing(f"cust-{i}", external_agent_id="sdr"):
                records.append(signal("done", enable_cost_tracing=True))
        monkeypatch.undo()
        paid_hooks.flush(10)
        stored = {s["idempotency_key"] for s in ledger.signals()}
    keys = {r.idempotency_key for r in records}
    assert len(keys) == 50 and stored == keys
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)


def test_the_pipeline_hands_the_ledger_flat_call_rows_of_plain_values(tmp_path):
    """Buffered call rows are no containers of their own: the batch reaches the ledger as
    one flat list of strings and numbers (a tuple per row kept the garbage collector's
    young generation filling up until the batch was written)."""
    import gc

    seen: list[tuple[list[Any], bool]] = []
    with temporary_ledger(tmp_path) as view:
        write_rows = view.ledger.write_rows

        def watched(calls: list[Any], signals: list[Any], *, flat_calls: bool = False) -> None:
            seen.append((list(calls), flat_calls))
            write_rows(calls, signals, flat_calls=flat_calls)

        view.ledger.write_rows = watched  # type: ignore[method-assign]
        with paid_tracing("acme", external_agent_id="sdr"):
            for i in range(5):
                _one_call(i)
            signal("done", enable_cost_tracing=True)
        paid_hooks.flush(10)
        rows = view.calls()
    from paid_hooks.ledger._common import CALL_COLUMNS

    [(calls, flat)] = seen
    width, response_id = len(CALL_COLUMNS), CALL_COLUMNS.index("response_id")
    assert flat and len(calls) == 5 * width
    assert not any(gc.is_tracked(value) for value in calls)
    assert [calls[i + response_id] for i in range(0, len(calls), width)] == [
        r["response_id"] for r in rows] == [f"resp-{i}" for i in range(5)]
