"""The ledger-only path's writer thread (``_pipeline._LedgerWriter``): where the pipeline
worker's batches are written, in order, exactly once, with bounded memory."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paid_hooks
from paid_hooks import Usage, _runtime, paid_tracing, start_call
from paid_hooks import _pipeline as pipeline_module
from paid_hooks.ledger import open_ledger
from paid_hooks.ledger._common import CALL_COLUMNS
from paid_hooks.testing import LedgerView, temporary_ledger

WRITER = "paid-hooks-ledger-writer"
_RESPONSE_ID = CALL_COLUMNS.index("response_id")
_WIDTH = len(CALL_COLUMNS)


def _record(n: int) -> None:
    with paid_tracing("acme", external_agent_id="sdr"):
        for i in range(n):
            handle = start_call(provider="openai", operation="chat",
                                request_model="gpt-4o-mini", captured_by="writer-test")
            handle.finish(Usage(input_tokens=10 + i, output_tokens=1), response_id=f"resp-{i}")


class Writes:
    """Wraps a ledger's ``write_rows``: notes each batch and its thread, waits for
    ``gate`` first, raises for the batches numbered in ``fail``."""

    def __init__(self, write_rows: Callable[..., None], fail: tuple[int, ...] = ()) -> None:
        self.write_rows = write_rows
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()
        self.threads: list[str] = []
        self.sizes: list[int] = []
        self.batches: list[list[str]] = []  # the response ids of each batch

    def __call__(self, calls: list[Any], signals: list[Any], *, flat_calls: bool = False
                 ) -> None:
        self.threads.append(threading.current_thread().name)
        self.gate.wait(10)
        rows = ([calls[i:i + _WIDTH] for i in range(0, len(calls), _WIDTH)] if flat_calls
                else calls)
        self.sizes.append(len(rows) + len(signals))
        self.batches.append([row[_RESPONSE_ID] for row in rows])
        if len(self.sizes) in self.fail:
            raise OSError("disk full")
        self.write_rows(calls, signals, flat_calls=flat_calls)


def _wrap(view: LedgerView, **kwargs: Any) -> Writes:
    writes = Writes(view.ledger.write_rows, **kwargs)
    view.ledger.write_rows = writes  # type: ignore[method-assign]
    return writes


def _response_ids_in_insertion_order(view: LedgerView) -> list[str]:
    return [row["response_id"] for row in sorted(view.calls(), key=lambda r: r["id"])]


def test_batches_are_written_on_the_writer_thread_once_each_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline_module, "DIRECT_WRITE_BATCH", 7)
    with temporary_ledger(tmp_path) as view:
        writes = _wrap(view)
        _record(100)
        assert paid_hooks.flush(10)
        assert _response_ids_in_insertion_order(view) == [f"resp-{i}" for i in range(100)]
    assert set(writes.threads) == {WRITER}
    assert sum(writes.sizes) == 100 and max(writes.sizes) <= 2 * 7  # (see WRITES_WAITING)


def test_flush_waits_for_the_write_and_a_stalled_writer_never_blocks_the_caller(
        tmp_path, monkeypatch):
    """The hand-off is bounded: behind a stalled write the worker stops taking records
    (they wait in its queue; the recording thread yields, never blocks), and ``flush``
    returns only once the rows are in the ledger."""
    monkeypatch.setattr(pipeline_module, "DIRECT_WRITE_BATCH", 5)
    monkeypatch.setattr(pipeline_module, "YIELD_S", 0.0)
    with temporary_ledger(tmp_path) as view:
        writes = _wrap(view)
        writes.gate.clear()
        pipeline = _runtime.get_runtime().pipeline
        _record(2000)  # returns: the caller's thread never waits for the ledger
        handoff = pipeline._ledger_writer._queue
        deadline = time.monotonic() + 10
        while not handoff.full() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert handoff.full() and handoff.qsize() == pipeline_module.WRITES_WAITING
        # (the worker takes up to DRAIN_BATCH records at a time: the rest are still queued)
        assert pipeline.waiting > 0, "the worker waits for the writer, the records with it"
        assert paid_hooks.flush(0.2) is False
        assert view.ledger.calls() == []  # (view.calls() would flush first)
        writes.gate.set()
        assert paid_hooks.flush(10)
        assert _response_ids_in_insertion_order(view) == [f"resp-{i}" for i in range(2000)]


def test_a_failing_write_is_logged_and_the_next_batches_are_written(tmp_path, monkeypatch,
                                                                     caplog):
    monkeypatch.setattr(pipeline_module, "DIRECT_WRITE_BATCH", 10)
    with temporary_ledger(tmp_path) as view:
        writes = _wrap(view, fail=(2,))
        with caplog.at_level(logging.ERROR):
            _record(50)
            assert paid_hooks.flush(10)
        lost = set(writes.batches[1])  # the failing batch, logged
        assert lost and _response_ids_in_insertion_order(view) == [
            f"resp-{i}" for i in range(50) if f"resp-{i}" not in lost]
    assert sum(writes.sizes) == 50 and len(writes.sizes) >= 3
    assert any("could not write" in r.getMessage() for r in caplog.records)


def test_shutdown_writes_everything_then_stops_the_writer(tmp_path):
    with temporary_ledger(tmp_path):
        _record(30)
    # (temporary_ledger shuts down, with no flush before)
    assert not any(t.name == WRITER for t in threading.enumerate())
    rows = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}").calls()
    assert sorted(r["response_id"] for r in rows) == sorted(f"resp-{i}" for i in range(30))


def test_the_writer_serves_a_ledger_whose_write_was_replaced_too(tmp_path, monkeypatch):
    """A ledger taking records (not rows) is written on the same thread, in order."""
    monkeypatch.setattr(pipeline_module, "DIRECT_WRITE_BATCH", 4)
    threads: list[str] = []
    with temporary_ledger(tmp_path) as view:
        write = view.ledger.write

        def noted(calls: Any, signals: Any) -> None:
            threads.append(threading.current_thread().name)
            write(calls, signals)

        view.ledger.write = noted  # type: ignore[method-assign]
        _record(10)
        assert paid_hooks.flush(10)
        assert _response_ids_in_insertion_order(view) == [f"resp-{i}" for i in range(10)]
    assert threads and set(threads) == {WRITER}


def test_the_writer_runs_writes_inline_when_no_thread_can_start(monkeypatch):
    writer = pipeline_module._LedgerWriter()
    done: list[int] = []

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    writer.submit(done.append, 1)
    writer.drain()
    writer.stop()
    assert done == [1]


def test_the_writer_survives_a_write_that_raises(caplog):
    writer = pipeline_module._LedgerWriter()
    done: list[int] = []

    def boom(_: int) -> None:
        raise ValueError("boom")

    with caplog.at_level(logging.ERROR):
        writer.submit(boom, 0)
        writer.submit(done.append, 1)
        writer.drain()
        assert done == [1]
        writer.submit(done.append, 2)
        writer.stop()
    assert done == [1, 2]
    assert any("ledger write failed" in r.getMessage() for r in caplog.records)
