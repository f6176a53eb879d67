"""The main job end to end: the AI SDR agent over 25 sample replies, then the cost report.

Needs: ``pip install 'paid-hooks[openai,anthropic]'`` (``./scripts/demo`` installs it).

Offline unless OPENAI_API_KEY and ANTHROPIC_API_KEY are set. Writes a fresh ledger (a
temporary file unless ``--ledger`` is given) and prints what each outcome cost: per
outcome (signal), per customer, and the total. ``--json`` prints the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from decimal import Decimal
from typing import Any

from ai_sdr_agent import build_agent, load_replies
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

import paid_hooks
from paid_hooks.cli import console as report_console
from paid_hooks.cli import cost_rows, costs_table
from paid_hooks.ledger import open_ledger


def run(ledger_url: str, console: Console) -> None:
    paid_hooks.initialize_tracing(ledger=ledger_url)
    agent = build_agent()
    replies = load_replies()
    outcomes: dict[str, int] = {}
    with Progress(TextColumn("[bold]AI SDR agent"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False) as progress:
        task = progress.add_task("", total=len(replies))
        for reply in replies:
            outcome = agent.handle(reply)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            progress.update(task, advance=1, description=f"{reply.company}: {outcome}")
    if not paid_hooks.flush(timeout=10):
        console.print("[red]warning: not everything reached the ledger in 10 s")


def report(ledger_url: str) -> dict[str, Any]:
    store = open_ledger(ledger_url)
    by_signal = cost_rows(store, "signal")
    by_customer = cost_rows(store, "customer")
    total = sum((Decimal(r["cost_usd"]) for r in by_signal), Decimal(0))
    return {"ledger": ledger_url, "by_signal": by_signal, "by_customer": by_customer,
            "total_cost_usd": str(total),
            "ai_calls": sum(r["ai_calls"] for r in by_signal)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ledger", help="ledger URL (default: a fresh temporary file)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    ledger_url = args.ledger or (
        f"sqlite:///{tempfile.mkdtemp(prefix='paid-hooks-demo-')}/ledger.db")
    console = report_console(stderr=args.json)
    run(ledger_url, console)
    result = report(ledger_url)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    console.print()
    console.print(costs_table(result["by_signal"], "signal"))
    console.print(costs_table(result["by_customer"], "customer"))
    meetings = next((r for r in result["by_signal"] if r["group"] == "meeting_booked"),
                    None)
    if meetings and meetings["outcomes"]:
        per_meeting = Decimal(meetings["cost_per_outcome_usd"])
        console.print(f"Each meeting booked cost ${per_meeting:,.6f} in AI calls on average "
                      f"({meetings['outcomes']} meetings).")
    console.print(f"Total AI cost: ${Decimal(result['total_cost_usd']):,.6f} for "
                  f"{result['ai_calls']} AI calls over {len(load_replies())} replies.")
    print(f"\nEvery signal with its cost: paid-hooks signals --ledger {ledger_url}")


if __name__ == "__main__":
    main()
