"""The ``paid-hooks`` command: read the ledger.

``paid-hooks signals`` lists each signal with the cost attributed to it;
``paid-hooks costs --by customer`` totals costs by signal, customer, agent, model or
provider, with unattributed, unpriced and unknown usage as rows of their own. Every
command takes ``--ledger URL`` (default: as the library) and ``--json``.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from paid_hooks.ledger import LedgerError, SQLLedger, default_ledger_url, open_ledger

__all__ = ["app", "console", "cost_rows", "costs_table", "main"]

app = typer.Typer(
    name="paid-hooks",
    help="Report AI costs per business outcome from the paid-hooks ledger.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a ledger URL with its password
)

LedgerOption = Annotated[
    str | None,
    typer.Option("--ledger", help="Ledger URL (default: $PAID_HOOKS_LEDGER or the user data dir)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON rows for machines.")]


class GroupBy(StrEnum):
    signal = "signal"
    customer = "customer"
    agent = "agent"
    model = "model"
    provider = "provider"


@contextlib.contextmanager
def _reading(url: str | None) -> Iterator[SQLLedger]:
    """The ledger at ``url``, closed afterwards; a ledger that cannot be read exits 1.

    The messages come from the ledger, which never puts credentials in them.
    """
    try:
        store = open_ledger(url or default_ledger_url())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--ledger") from exc
    except ImportError as exc:
        _fail(str(exc))
    try:
        yield store
    except LedgerError as exc:
        _fail(str(exc))
    finally:
        store.close()


def _fail(message: str) -> NoReturn:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


def _parse_since(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"expected an ISO date such as 2026-11-01, got {value!r}",
                                 param_hint="--since") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def console(**kwargs: Any) -> Console:
    """A console for reports: the terminal's width, or 120 columns when piped."""
    out = Console(**kwargs)
    if not out.is_terminal:
        out = Console(width=120, **kwargs)
    return out


def _money(value: str) -> str:
    amount = Decimal(value)
    return f"${amount:,.6f}" if amount else "$0"


def _print_json(rows: Any) -> None:
    sys.stdout.write(json.dumps(rows, indent=2, sort_keys=False) + "\n")


@app.command()
def signals(
    ledger: LedgerOption = None,
    customer: Annotated[str | None, typer.Option(help="Only this external customer id.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this external agent id.")] = None,
    since: Annotated[str | None,
                     typer.Option(help="Only signals at or after this ISO date.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Each signal with the AI cost attributed to it."""
    since_ts = _parse_since(since)
    with _reading(ledger) as store:
        rows = store.signals(customer=customer, agent=agent, since=since_ts)
    if as_json:
        _print_json(rows)
        return
    table = Table(title="Signals", title_justify="left", box=box.SIMPLE_HEAD)
    for column, justify in (("time (UTC)", "left"), ("event", "left"), ("customer", "left"),
                            ("agent", "left"), ("cost tracing", "left"), ("calls", "right"),
                            ("cost", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    total = Decimal(0)
    for row in rows:
        when = datetime.fromtimestamp(row["created_at"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        notes = row["cost_tracing"]
        if row["unpriced_calls"] or row["usage_unknown_calls"]:
            notes += f" ({row['unpriced_calls']} unpriced, {row['usage_unknown_calls']} unknown)"
        table.add_row(when, row["event_name"], row["external_customer_id"],
                      row["external_agent_id"], notes, str(row["ai_calls"]),
                      _money(row["cost_usd"]))
        total += Decimal(row["cost_usd"])
    table.add_section()
    calls = sum(r["ai_calls"] for r in rows)
    table.add_row("", "total", "", "", "", str(calls), _money(str(total)))
    console().print(table)


@app.command()
def costs(
    by: Annotated[GroupBy, typer.Option("--by", help="How to group the totals.")] = GroupBy.signal,
    ledger: LedgerOption = None,
    as_json: JsonOption = False,
) -> None:
    """Totals with tokens and call counts; unattributed and unpriced costs are rows of their own."""
    with _reading(ledger) as store:
        rows = cost_rows(store, by.value)
    if as_json:
        _print_json(rows)
        return
    console().print(costs_table(rows, by.value))


def cost_rows(store: Any, by: str) -> list[dict[str, Any]]:
    """The ``costs --by`` rows of a ledger, with outcome counts and cost per outcome."""
    rows: list[dict[str, Any]] = store.costs(by)
    outcomes = store.outcome_counts(by)
    for row in rows:
        count = outcomes.get(row["group"]) if row["kind"] == by else None
        row["outcomes"] = count
        row["cost_per_outcome_usd"] = (
            str((Decimal(row["cost_usd"]) / count).quantize(Decimal("0.000001")))
            if count else None)
    return rows


def costs_table(rows: list[dict[str, Any]], by: str) -> Table:
    """A rich table of :func:`cost_rows` output, with a total row."""
    table = Table(title=f"AI costs by {by}", title_justify="left", box=box.SIMPLE_HEAD)
    for column, justify in ((by, "left"), ("calls", "right"), ("in tok", "right"),
                            ("out tok", "right"), ("outcomes", "right"),
                            ("per outcome", "right"), ("cost", "right")):
        table.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    total = Decimal(0)
    for row in rows:
        style = "dim" if row["kind"] != by else None
        table.add_row(row["group"], str(row["ai_calls"]), f"{row['input_tokens']:,}",
                      f"{row['output_tokens']:,}", str(row["outcomes"] or ""),
                      _money(row["cost_per_outcome_usd"]) if row["cost_per_outcome_usd"] else "",
                      _money(row["cost_usd"]), style=style)
        total += Decimal(row["cost_usd"])
    table.add_section()
    table.add_row("total", str(sum(r["ai_calls"] for r in rows)),
                  f"{sum(r['input_tokens'] for r in rows):,}",
                  f"{sum(r['output_tokens'] for r in rows):,}", "", "", _money(str(total)))
    return table


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
