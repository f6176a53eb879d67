"""The main job: the demo's report totals equal the sum of the individual calls."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path

import genai_prices

ROOT = Path(__file__).parent.parent
PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic"}


def test_demo_report_totals_equal_the_sum_of_the_calls(tmp_path):
    ledger = tmp_path / "demo.db"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "demo.py"), "--json",
         "--ledger", f"sqlite:///{ledger}"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)

    with sqlite3.connect(ledger) as conn:
        conn.row_factory = sqlite3.Row
        calls = list(conn.execute("SELECT * FROM ai_calls"))
        signals = list(conn.execute("SELECT * FROM signals"))

    # Price every recorded call independently, straight from genai-prices.
    independent = Decimal(0)
    for call in calls:
        assert call["cost_status"] == "priced", dict(call)
        usage = genai_prices.Usage(input_tokens=call["input_tokens"],
                                   output_tokens=call["output_tokens"])
        independent += Decimal(genai_prices.calc_price(
            usage, call["model"], provider_id=PROVIDER_IDS[call["provider"]]).total_price)
    assert Decimal(report["total_cost_usd"]) == independent
    assert sum(Decimal(r["cost_usd"]) for r in report["by_customer"]) == independent
    assert report["ai_calls"] == len(calls)

    # 25 replies: each classified by OpenAI, drafted by Anthropic unless the lead declined,
    # and exactly one cost-tracing outcome signal per reply.
    replies = [json.loads(line) for line in
               (ROOT / "examples" / "data" / "sdr_replies.jsonl").read_text().splitlines()]
    outcomes = [s for s in signals if s["enable_cost_tracing"]]
    assert len(outcomes) == len(replies) == 25
    assert len({s["trace_id"] for s in outcomes}) == 25
    by_event = Counter(s["event_name"] for s in outcomes)
    assert set(by_event) == {"meeting_booked", "email_sent", "lead_disqualified"}
    providers = Counter(c["provider"] for c in calls)
    assert providers["openai"] == 25
    assert providers["anthropic"] == 25 - by_event["lead_disqualified"]
    meetings = next(r for r in report["by_signal"] if r["group"] == "meeting_booked")
    assert meetings["outcomes"] == by_event["meeting_booked"]
    assert meetings["ai_calls"] == 2 * by_event["meeting_booked"]
