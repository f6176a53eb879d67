"""The paid-hooks CLI reports exact totals that the test computes independently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, FakeUsage

from .conftest import MESSAGES, MODEL, expected_cost

CLI = [str(Path(sys.executable).parent / "paid-hooks")]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def populated(paid_ledger, fake_provider, client):
    """Three outcomes for two customers, one unattributed trace, one unpriced call."""
    plan = {
        ("acme", "meeting_booked"): [FakeUsage(1200, 300, cache_read_tokens=200),
                                     FakeUsage(900, 80)],
        ("acme", "email_sent"): [FakeUsage(700, 150)],
        ("globex", "meeting_booked"): [FakeUsage(2000, 500)],
    }
    for (customer, event), usages in plan.items():
        fake_provider.queue(*(FakeReply(usage=u) for u in usages))
        with paid_tracing(customer, external_agent_id="sdr"):
            for _ in usages:
                client.chat.completions.create(model=MODEL, messages=MESSAGES)
            signal(event, enable_cost_tracing=True)
    fake_provider.queue(FakeReply(usage=FakeUsage(400, 40)),
                        FakeReply(usage=FakeUsage(50, 5), model="private-model"))
    with paid_tracing("acme", external_agent_id="sdr"):
        client.chat.completions.create(model=MODEL, messages=MESSAGES)  # no cost signal
    with paid_tracing("globex", external_agent_id="sdr"):
        client.chat.completions.create(model="private-model", messages=MESSAGES)
        signal("lead_disqualified", enable_cost_tracing=True)
    paid_ledger.flush()
    return plan, paid_ledger


def test_signals_json_reports_exact_totals(populated):
    plan, ledger = populated
    result = run_cli("signals", "--json", "--ledger", ledger.url)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert len(rows) == 4
    for row in rows:
        assert set(row) >= {"event_name", "external_customer_id", "external_agent_id", "trace_id",
                            "enable_cost_tracing", "cost_usd", "ai_calls"}
        assert isinstance(row["cost_usd"], str) and isinstance(row["ai_calls"], int)
        usages = plan.get((row["external_customer_id"], row["event_name"]))
        if usages is None:  # the unpriced outcome
            assert row["ai_calls"] == 1 and row["cost_usd"] == "0"
            assert row["unpriced_calls"] == 1
            continue
        assert row["ai_calls"] == len(usages)
        assert Decimal(row["cost_usd"]) == sum(expected_cost(u) for u in usages)

    acme = json.loads(run_cli("signals", "--json", "--customer", "acme",
                              "--ledger", ledger.url).stdout)
    assert {r["event_name"] for r in acme} == {"meeting_booked", "email_sent"}


def test_costs_by_customer_shows_unattributed_and_unpriced_rows(populated):
    plan, ledger = populated
    result = run_cli("costs", "--by", "customer", "--json", "--ledger", ledger.url)
    assert result.returncode == 0, result.stderr
    rows = {r["group"]: r for r in json.loads(result.stdout)}
    acme = sum(expected_cost(u) for (c, _), us in plan.items() if c == "acme" for u in us)
    globex = sum(expected_cost(u) for (c, _), us in plan.items() if c == "globex" for u in us)
    assert Decimal(rows["acme"]["cost_usd"]) == acme
    assert Decimal(rows["globex"]["cost_usd"]) == globex
    assert rows["acme"]["outcomes"] == 2 and rows["acme"]["ai_calls"] == 3
    assert Decimal(rows["(unattributed)"]["cost_usd"]) == expected_cost(FakeUsage(400, 40))
    assert rows["(unpriced)"]["ai_calls"] == 1 and rows["(unpriced)"]["input_tokens"] == 50
    total = sum(Decimal(r["cost_usd"]) for r in rows.values())
    assert total == ledger.total_cost()


def test_costs_by_signal_gives_cost_per_outcome(populated):
    plan, ledger = populated
    rows = {r["group"]: r for r in json.loads(
        run_cli("costs", "--by", "signal", "--json", "--ledger", ledger.url).stdout)}
    meetings = [u for (_, e), us in plan.items() if e == "meeting_booked" for u in us]
    assert rows["meeting_booked"]["outcomes"] == 2
    assert Decimal(rows["meeting_booked"]["cost_usd"]) == sum(expected_cost(u) for u in meetings)
    assert Decimal(rows["meeting_booked"]["cost_per_outcome_usd"]) == (
        sum(expected_cost(u) for u in meetings) / 2).quantize(Decimal("0.000001"))


def test_human_tables_render(populated):
    _, ledger = populated
    signals = run_cli("signals", "--ledger", ledger.url)
    assert signals.returncode == 0 and "meeting_booked" in signals.stdout
    assert "total" in signals.stdout
    for by in ("signal", "customer", "agent", "model", "provider"):
        result = run_cli("costs", "--by", by, "--ledger", ledger.url)
        assert result.returncode == 0, result.stderr
        assert "(unattributed)" in result.stdout and "(unpriced)" in result.stdout


def test_bad_arguments_are_clear_errors(tmp_path):
    bad = run_cli("signals", "--ledger", "mysql://x")
    assert bad.returncode == 2 and "unsupported ledger URL" in bad.stderr
    since = run_cli("signals", "--since", "yesterday", "--ledger", f"sqlite:///{tmp_path}/l.db")
    assert since.returncode == 2 and "ISO date" in since.stderr
