"""The ledger contract: every test runs on SQLite and on a real PostgreSQL server.

Records go in through ``write`` (or through the whole library, end to end) and the
assertions read only the public reports, so both backends must behave identically.
"""

from __future__ import annotations

import json
import threading
from decimal import Decimal

import pytest
from core.conftest import MESSAGES, MODEL, expected_cost
from ledger_records import TRACE, priced, run_cli, sig
from openai import OpenAI

from paid_hooks import CostStatus, PricedCall, SignalRecord, Usage, paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage
from paid_hooks_openai import PaidOpenAI


def test_duplicates_of_one_response_keep_the_richest_row(open_backend):
    ledger = open_backend()

    def rec(usage: Usage, by: str, span: int, customer: str | None) -> PricedCall:
        return priced(span, "0.01", customer=customer, response_id="chatcmpl-1", usage=usage,
                      by=by)

    rich = Usage(input_tokens=100, output_tokens=5, cache_read_tokens=40, reasoning_tokens=0)
    ledger.write([rec(Usage(input_tokens=100, output_tokens=5), "langchain", 1, "acme")], [])
    ledger.write([rec(rich, "openai", 2, None)], [])
    ledger.write([rec(Usage(input_tokens=100, output_tokens=5), "httpx", 3, "other")], [])
    [row] = ledger.calls()
    assert row["captured_by"] == "openai" and row["cache_read_tokens"] == 40
    assert row["span_id"] == f"{2:016x}"
    assert row["external_customer_id"] == "acme", "a known customer is never overwritten"
    assert row["cost_usd"] == "0.01"


def test_duplicates_within_one_batch_keep_the_richest_row(open_backend):
    ledger = open_backend()
    poor = priced(1, "0.01", response_id="resp-1", usage=Usage(input_tokens=10), by="httpx")
    rich = priced(2, "0.02", response_id="resp-1",
                  usage=Usage(input_tokens=10, output_tokens=3, cache_read_tokens=0))
    ledger.write([poor, rich, poor], [])
    [row] = ledger.calls()
    assert (row["captured_by"], row["cost_usd"], row["output_tokens"]) == ("openai", "0.02", 3)


def test_attribution_holds_when_rows_arrive_late_and_out_of_order(open_backend):
    ledger = open_backend()
    ledger.write([priced(1, "0.001")], [])                   # a call before its signal
    assert ledger.signals() == []
    ledger.write([], [sig("email_sent", "late", 3_000)])     # the later signal, written first
    ledger.write([], [sig("meeting_booked", "early", 2_000)])
    ledger.write([priced(2, "0.0025")], [])                  # a late call
    rows = {r["idempotency_key"]: r for r in ledger.signals()}
    assert [r["idempotency_key"] for r in ledger.signals()] == ["early", "late"]
    assert rows["early"]["cost_tracing"] == "attributed"
    assert (rows["early"]["ai_calls"], rows["early"]["cost_usd"]) == (2, "0.0035")
    assert rows["early"]["input_tokens"] == 3 and rows["early"]["output_tokens"] == 2
    assert rows["late"]["cost_tracing"] == "rejected"
    assert rows["late"]["rejection_reason"] == "second_cost_signal_in_trace"
    assert (rows["late"]["ai_calls"], rows["late"]["cost_usd"]) == (0, "0")
    assert ledger.outcome_counts("signal") == {"meeting_booked": 1}


def test_a_second_ledger_object_reads_what_the_first_wrote(open_backend):
    writer, reader = open_backend(), open_backend()
    writer.write([priced(1, "0.5")], [sig("done", "k", 2_000)])
    [row] = reader.signals()
    assert (row["cost_usd"], row["ai_calls"]) == ("0.5", 1)
    reader.close()
    assert reader.signals() == [row], "a closed ledger opens a new connection when used"


def test_idempotency_key_keeps_the_first_signal(open_backend):
    ledger = open_backend()
    first = sig("meeting_booked", "same-key", 2_000)
    again = sig("email_sent", "same-key", 2_500)
    ledger.write([priced(1, "0.003")], [first, again])
    ledger.write([], [again, first])
    [row] = ledger.signals()
    assert row["event_name"] == "meeting_booked" and row["cost_usd"] == "0.003"


def test_a_failing_batch_writes_nothing(open_backend):
    ledger = open_backend()
    broken = SignalRecord(None, "acme", "sdr", TRACE, "bad", True, 2_000)  # type: ignore[arg-type]
    with pytest.raises(Exception, match=r"(?i)null"):
        ledger.write([priced(1, "0.1")], [broken])
    assert ledger.calls() == [] and ledger.signals() == []
    ledger.write([priced(1, "0.1")], [])  # and the ledger is usable afterwards
    assert len(ledger.calls()) == 1


def test_signal_filters_and_row_shape(open_backend):
    ledger = open_backend()
    ledger.write(
        [priced(1, "0.002", trace=1), priced(2, "0.004", trace=2, customer="globex")],
        [sig("booked", "a", 2_000_000_000, trace=1),
         sig("booked", "b", 5_000_000_000, trace=2, customer="globex", agent="support"),
         sig("opened", "c", 6_000_000_000, trace=2, cost=False, customer="globex")])
    keys = [r["idempotency_key"] for r in ledger.signals(customer="globex")]
    assert keys == ["b", "c"]
    assert [r["idempotency_key"] for r in ledger.signals(agent="support")] == ["b"]
    assert [r["idempotency_key"] for r in ledger.signals(since=5.0)] == ["b", "c"]
    row = ledger.signals(customer="acme")[0]
    assert row == {
        "event_name": "booked", "external_customer_id": "acme", "external_agent_id": "sdr",
        "trace_id": f"{1:032x}", "enable_cost_tracing": True, "cost_tracing": "attributed",
        "rejection_reason": None, "cost_usd": "0.002", "ai_calls": 1, "input_tokens": 1,
        "output_tokens": 1, "unpriced_calls": 0, "usage_unknown_calls": 0,
        "idempotency_key": "a", "data": None, "created_at": 2.0,
    }
    plain = ledger.signals(customer="globex")[1]
    assert (plain["cost_tracing"], plain["cost_usd"], plain["ai_calls"]) == ("none", "0", 0)


def test_costs_put_every_call_in_exactly_one_row(open_backend):
    ledger = open_backend()
    ledger.write(
        [priced(1, "0.25", trace=1), priced(2, "0.5", trace=2, customer="globex"),
         priced(3, "0.125", trace=2, customer="globex"),
         priced(4, "0.75", trace=3),                                    # no cost signal
         priced(5, None, trace=1, status=CostStatus.UNPRICED, model="private"),
         priced(6, None, trace=2, status=CostStatus.USAGE_UNKNOWN),
         priced(7, None, trace=1, status=CostStatus.NO_CHARGE)],
        [sig("booked", "a", 2_000, trace=1),
         sig("booked", "b", 2_000, trace=2, customer="globex")])
    rows = ledger.costs("customer")
    assert [(r["group"], r["kind"], r["ai_calls"], r["cost_usd"]) for r in rows] == [
        ("globex", "customer", 2, "0.625"),
        ("acme", "customer", 1, "0.25"),
        ("(unattributed)", "unattributed", 1, "0.75"),
        ("(failed, no charge)", "no_charge", 1, "0"),
        ("(unpriced)", "unpriced", 1, "0"),
        ("(usage unknown)", "usage_unknown", 1, "0"),
    ]
    assert rows[0]["traces"] == 1 and rows[0]["input_tokens"] == 5
    by_signal = ledger.costs("signal")
    assert [(r["group"], r["cost_usd"], r["traces"]) for r in by_signal[:2]] == [
        ("booked", "0.875", 2), ("(unattributed)", "0.75", 1)]
    assert [r["group"] for r in ledger.costs("model")][:2] == [MODEL, "(unattributed)"]
    assert ledger.outcome_counts("customer") == {"acme": 1, "globex": 1}
    assert ledger.outcome_counts("model") == {}
    with pytest.raises(ValueError, match="must be signal"):
        ledger.costs("color")


def test_concurrent_writers_agree(open_backend):
    """Two ledger objects (two processes) write duplicates of the same calls at once."""
    ledgers = [open_backend(), open_backend()]
    poor = Usage(input_tokens=100, output_tokens=5)
    rich = Usage(input_tokens=100, output_tokens=5, cache_read_tokens=10)
    errors: list[BaseException] = []

    def writer(ledger, usage: Usage, by: str) -> None:
        try:
            for n in range(40):
                ledger.write([priced(n, "0.001", trace=n, usage=usage, by=by,
                                     response_id=f"resp-{n}")],
                             [sig("done", f"sig-{n}", 2_000, trace=n)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(ledgers[0], poor, "httpx")),
               threading.Thread(target=writer, args=(ledgers[1], rich, "openai")),
               threading.Thread(target=writer, args=(ledgers[0], rich, "openai"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    calls = ledgers[1].calls()
    assert len(calls) == 40 and {c["captured_by"] for c in calls} == {"openai"}
    signals = ledgers[0].signals()
    assert len(signals) == 40 and {s["cost_usd"] for s in signals} == {"0.001"}


def test_end_to_end_through_the_library_and_the_cli(backend_ledger, ledger_url, fake_provider):
    client = PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key="sk-test-key",
                               max_retries=0))
    u1, u2, u3 = FakeUsage(1200, 300, cache_read_tokens=200), FakeUsage(800, 50), FakeUsage(70, 9)
    fake_provider.queue(FakeReply(usage=u1), FakeReply(usage=u2), FakeReply(usage=u3))
    with paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
        signal("meeting_booked", enable_cost_tracing=True, data={"lead": 7})
        client.chat.completions.create(model=MODEL, messages=MESSAGES)
    with paid_tracing("globex", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # unattributed

    [row] = backend_ledger.signals()
    assert (row["cost_tracing"], row["ai_calls"], row["data"]) == ("attributed", 2, {"lead": 7})
    assert Decimal(row["cost_usd"]) == expected_cost(u1) + expected_cost(u2)
    calls = backend_ledger.calls()
    assert [c["input_tokens"] for c in calls] == [1200, 800, 70]
    assert [Decimal(c["cost_usd"]) for c in calls] == [expected_cost(u) for u in (u1, u2, u3)]

    result = run_cli("signals", "--json", "--ledger", ledger_url)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == backend_ledger.signals()
    result = run_cli("costs", "--by", "customer", "--json", "--ledger", ledger_url)
    assert result.returncode == 0, result.stderr
    rows = {r["group"]: r for r in json.loads(result.stdout)}
    assert rows["acme"]["cost_usd"] == row["cost_usd"] and rows["acme"]["outcomes"] == 1
    assert Decimal(rows["(unattributed)"]["cost_usd"]) == expected_cost(u3)
    table = run_cli("signals", "--ledger", ledger_url)
    assert table.returncode == 0 and "meeting_booked" in table.stdout


def test_report_money_never_uses_exponent_notation():
    from decimal import Decimal

    from paid_hooks.ledger._common import _usd

    assert _usd(Decimal("100.000")) == "100"
    assert _usd(Decimal("1E+3")) == "1000"
    assert _usd(Decimal("0.000210")) == "0.00021"
    assert _usd(None) == "0"


def test_write_rows_takes_call_rows_as_tuples_or_flat_alike(open_backend):
    """``write_rows`` with a tuple per call row, and with the rows' values in one flat list
    (``flat_calls``, how the pipeline hands them over), writes the same ledger; duplicates
    within the batch keep the richest row either way."""
    records = [priced(i + 1, f"0.0{i % 3 + 1}", response_id=f"resp-{i // 2}",
                      usage=Usage(input_tokens=10 + i, output_tokens=i % 2 or None))
               for i in range(7)]
    signals = [sig("done", "k-1", 9)]
    ledgers = []
    for flat in (False, True):
        ledger = open_backend()
        call_row, signal_row = ledger.row_builders()
        rows = [call_row(r) for r in records]
        calls = [value for row in rows for value in row] if flat else rows
        ledger.write_rows(calls, [signal_row(s) for s in signals], flat_calls=flat)
        ledgers.append(ledger)
    tuples, flat = ([{k: v for k, v in row.items() if k != "id"} for row in lg.calls()]
                    for lg in ledgers)
    assert tuples == flat and len(flat) == 4
    assert [r["output_tokens"] for r in flat] == [1, 1, 1, None]
    assert [s["idempotency_key"] for s in ledgers[1].signals()] == ["k-1"]
