"""The ``paid-hooks`` command: read the ledger.

``paid-hooks signals`` lists each signal with the cost attributed to it;
``paid-hooks costs --by customer`` totals costs by signal, customer, agent, model or
provider, with unattributed, unpriced and unknown usage as rows of their own. Every
command takes ``--ledger URL`` (default: as the library) and ``--json``.

Start-up is kept light: rich is imported only to draw a table for a terminal, and the
JSON and the piped tables are written as text directly (the same text rich and
``json.dumps(rows, indent=2)`` would write, much faster for large reports).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii
from operator import itemgetter
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from paid_hooks.ledger import LedgerError, SQLLedger, default_ledger_url, open_ledger

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.table import Table

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

TABLE_LIMIT = 100
"""How many signals (the most recent) ``paid-hooks signals`` shows as a table by default."""
PIPED_WIDTH = 120


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
    except (ImportError, LedgerError) as exc:
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
    from rich.console import Console

    out = Console(**kwargs)
    if not out.is_terminal:
        out = Console(width=PIPED_WIDTH, **kwargs)
    return out


def _money(value: str) -> str:
    amount = Decimal(value)
    return f"${amount:,.6f}" if amount else "$0"


# -- JSON ----------------------------------------------------------------------------------

# json.dumps' own C encoder, writing a newline between the items of a list: encoded JSON
# scalars hold no raw newline, so a list of scalars comes back as one string that splits
# into each item's JSON text, with one C call for a whole column of a report.
_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_encode_lines: Any = (
    _make_encoder(None, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", "\n",
                  False, False, True)
    if _make_encoder is not None else None)
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _json_column(values: list[Any]) -> list[str]:
    """Each value of one key of the rows as ``json.dumps(rows, indent=2)`` writes it."""
    if _encode_lines is not None and set(map(type, values)) <= _SCALARS:
        return "".join(_encode_lines(values, 0))[1:-1].split("\n")
    return [json.dumps(v, indent=2).replace("\n", "\n    ") for v in values]


def json_text(rows: Sequence[dict[str, Any]]) -> str:
    """``json.dumps(rows, indent=2)``, much faster for large reports, for rows that all
    have the same keys in the same order (falls back to ``json.dumps`` otherwise)."""
    keys = list(rows[0]) if rows else []
    if len(keys) < 2 or any(list(row) != keys for row in rows):
        return json.dumps(rows, indent=2)
    pieces: list[Iterable[str]] = []
    columns = zip(*map(itemgetter(*keys), rows), strict=True)
    for n, (key, column) in enumerate(zip(keys, columns, strict=True)):
        prefix = "{\n    " if n == 0 else ",\n    "
        pieces += [repeat(f"{prefix}{json.dumps(key)}: "), _json_column(list(column))]
    pieces.append(repeat("\n  },\n  "))
    text = "".join(chain.from_iterable(zip(*pieces, strict=False)))  # (repeat() is endless)
    return f"[\n  {text[:-4]}\n]"


def _print_json(rows: Sequence[dict[str, Any]]) -> None:
    sys.stdout.write(json_text(rows) + "\n")


# -- tables -------------------------------------------------------------------------------

@dataclass
class _TableSpec:
    """A report table, drawn as rich draws ``Table(box=SIMPLE_HEAD, title_justify="left")``."""

    title: str
    columns: list[tuple[str, str, bool]]
    """Header, justify (``left`` or ``right``), no_wrap."""
    rows: list[tuple[list[str], str | None]] = field(default_factory=list)
    """Cells, and the row's style (``dim``) or ``None``."""
    footer: list[str] | None = None
    """A last row after a section break (the totals)."""

    def widths(self) -> list[int] | None:
        """Each column's width, if every cell is plain printable ASCII without spaces
        around it (one cell per character, nothing rich would restyle, trim or wrap);
        else ``None``."""
        texts = [h for h, _, _ in self.columns]
        for cells, _ in self.rows:
            texts += cells
        if self.footer:
            texts += self.footer
        texts.append(self.title)
        if not all(t.isascii() and t.isprintable() and t.strip() == t for t in texts):
            return None  # (rich trims the spaces around a cell's text)
        widths = [len(h) for h, _, _ in self.columns]
        rows = [cells for cells, _ in self.rows]
        for cells in [*rows, self.footer] if self.footer is not None else rows:
            widths = [max(w, len(c)) for w, c in zip(widths, cells, strict=True)]
        return widths if all(widths) else None  # rich draws empty columns its own way

    def lines(self, widths: list[int]) -> Iterator[list[tuple[str, str | None]]]:
        """The table's lines, each as (text, style) pieces."""
        width = sum(widths) + 3 * len(widths) + 1
        if self.title:
            yield [(self.title.ljust(width), "table.title")]
        yield [(" " * width, None)]

        def row(cells: Sequence[str], style: str | None) -> list[tuple[str, str | None]]:
            pieces: list[tuple[str, str | None]] = [(" ", None)]
            for (_, justify, _), w, cell in zip(self.columns, widths, cells, strict=True):
                text = cell.rjust(w) if justify == "right" else cell.ljust(w)
                pieces += [(" ", style), (text, style), (" ", style), (" ", None)]
            return pieces

        yield row([h for h, _, _ in self.columns], "table.header")
        yield [(" " + "─" * (width - 2) + " ", None)]
        for cells, style in self.rows:
            yield row(cells, style)
        if self.footer is not None:
            if self.rows:  # a section break (rich draws none before a first row)
                yield [(" " * width, None)]
            yield row(self.footer, None)
        yield [(" " * width, None)]

    def fits(self, max_width: int) -> list[int] | None:
        """:meth:`widths`, if the table fits ``max_width`` columns and its title fits the
        table (rich wraps them otherwise)."""
        widths = self.widths()
        if widths is None:
            return None
        width = sum(widths) + 3 * len(widths) + 1
        return widths if len(self.title) <= width <= max_width else None

    def rich_table(self) -> Table:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        # every text as it is (a customer id "[b]x" is no markup)
        table = Table(title=Text(self.title, style="table.title") if self.title else None,
                      title_justify="left", box=box.SIMPLE_HEAD)
        for header, justify, no_wrap in self.columns:
            table.add_column(Text(header), justify=justify,  # type: ignore[arg-type]
                             no_wrap=no_wrap)
        for cells, style in self.rows:
            table.add_row(*(Text(c) for c in cells), style=style)
        if self.footer is not None:
            table.add_section()
            table.add_row(*(Text(c) for c in self.footer))
        return table


class _FastTable:
    """A rich renderable drawing a :class:`_TableSpec` that fits the console as rich's
    ``Table`` would, without its per-cell layout work."""

    def __init__(self, spec: _TableSpec, widths: list[int]) -> None:
        self.spec, self.widths = spec, widths

    def __rich_console__(self, out: Console, options: ConsoleOptions) -> RenderResult:
        from rich.segment import Segment

        get_style = out.get_style
        for pieces in self.spec.lines(self.widths):
            for text, style in pieces:
                yield Segment(text, get_style(style) if style else None)
            yield Segment.line()


def _plain_output() -> bool:
    """Whether rich would see no terminal on stdout (``Console.is_terminal``'s rules)."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "0"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color == ""
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return isatty is None or not isatty()
    except ValueError:  # closed
        return True


def _show(spec: _TableSpec, note: str | None = None) -> None:
    """Print ``spec`` as rich would: as text when piped and the table fits, through rich
    otherwise (a terminal, or a table rich has to wrap)."""
    if _plain_output():
        widths = spec.fits(PIPED_WIDTH)
        if widths is not None:
            out = ["".join(text for text, _ in pieces) for pieces in spec.lines(widths)]
            if note:
                out.append(note)
            sys.stdout.write("\n".join(out) + "\n")
            return
    screen = console()
    widths = spec.fits(screen.width)
    screen.print(_FastTable(spec, widths) if widths is not None else spec.rich_table())
    if note:
        screen.print(note, markup=False, highlight=False)


# -- commands -------------------------------------------------------------------------------

@app.command()
def signals(
    ledger: LedgerOption = None,
    customer: Annotated[str | None, typer.Option(help="Only this external customer id.")] = None,
    agent: Annotated[str | None, typer.Option(help="Only this external agent id.")] = None,
    since: Annotated[str | None,
                     typer.Option(help="Only signals at or after this ISO date.")] = None,
    limit: Annotated[int | None, typer.Option(
        help=f"Only the N most recent signals, 0 for all (table default: {TABLE_LIMIT}; "
             "--json default: all).", min=0)] = None,
    as_json: JsonOption = False,
) -> None:
    """Each signal with the AI cost attributed to it."""
    since_ts = _parse_since(since)
    if limit is None:
        limit = 0 if as_json else TABLE_LIMIT
    with _reading(ledger) as store:
        if as_json:
            fast = getattr(store, "signals_json", None)
            pieces = fast(customer=customer, agent=agent, since=since_ts, limit=limit) \
                if fast is not None else None
            if pieces is not None:
                sys.stdout.writelines(pieces)
                sys.stdout.write("\n")
                return
        rows = store.signals(customer=customer, agent=agent, since=since_ts)
    shown = rows[-limit:] if limit and len(rows) > limit else rows
    if as_json:
        _print_json(shown)
        return
    spec = _TableSpec("Signals", [(c, j, False) for c, j in (
        ("time (UTC)", "left"), ("event", "left"), ("customer", "left"), ("agent", "left"),
        ("cost tracing", "left"), ("calls", "right"), ("cost", "right"))])
    for row in shown:
        when = datetime.fromtimestamp(row["created_at"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
        notes = row["cost_tracing"]
        if row["unpriced_calls"] or row["usage_unknown_calls"]:
            notes += f" ({row['unpriced_calls']} unpriced, {row['usage_unknown_calls']} unknown)"
        spec.rows.append(([when, row["event_name"], row["external_customer_id"],
                           row["external_agent_id"], notes, str(row["ai_calls"]),
                           _money(row["cost_usd"])], None))
    total = sum((Decimal(r["cost_usd"]) for r in rows), Decimal(0))
    spec.footer = ["", "total", "", "", "", str(sum(r["ai_calls"] for r in rows)),
                   _money(str(total))]
    note = None
    if len(shown) < len(rows):
        note = (f"The {len(shown):,} most recent of {len(rows):,} signals (the total is of "
                "all of them); --limit 0 shows every one.")
    _show(spec, note)


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
    _show(_costs_spec(rows, by.value))


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


def _costs_spec(rows: list[dict[str, Any]], by: str) -> _TableSpec:
    spec = _TableSpec(f"AI costs by {by}", [(c, j, True) for c, j in (
        (by, "left"), ("calls", "right"), ("in tok", "right"), ("out tok", "right"),
        ("outcomes", "right"), ("per outcome", "right"), ("cost", "right"))])
    total = Decimal(0)
    for row in rows:
        spec.rows.append(([row["group"], str(row["ai_calls"]), f"{row['input_tokens']:,}",
                           f"{row['output_tokens']:,}", str(row["outcomes"] or ""),
                           _money(row["cost_per_outcome_usd"])
                           if row["cost_per_outcome_usd"] else "",
                           _money(row["cost_usd"])], "dim" if row["kind"] != by else None))
        total += Decimal(row["cost_usd"])
    spec.footer = ["total", str(sum(r["ai_calls"] for r in rows)),
                   f"{sum(r['input_tokens'] for r in rows):,}",
                   f"{sum(r['output_tokens'] for r in rows):,}", "", "", _money(str(total))]
    return spec


def costs_table(rows: list[dict[str, Any]], by: str) -> Table:
    """A rich table of :func:`cost_rows` output, with a total row."""
    return _costs_spec(rows, by).rich_table()


_FLAGS = {"signals": {"--json": "as_json"}, "costs": {"--json": "as_json"}}
_VALUES = {"signals": {"--ledger": "ledger", "--customer": "customer", "--agent": "agent",
                       "--since": "since", "--limit": "limit"},
           "costs": {"--ledger": "ledger", "--by": "by"}}


def _plain_invocation(argv: Sequence[str]) -> tuple[Any, dict[str, Any]] | None:
    """The command and arguments of a plain, valid ``signals`` or ``costs`` invocation;
    ``None`` for anything else (help, an unknown option, a value to complain about).

    Typer spends about 60 ms of every run building pydantic validators for the options
    (a third of the start-up), more than a report over a few thousand rows takes; so the
    common invocations are read here, and typer is left everything else, errors included.
    """
    if not argv or argv[0] not in _FLAGS:
        return None
    name = argv[0]
    flags, values = _FLAGS[name], _VALUES[name]
    kwargs: dict[str, Any] = {}
    rest = list(argv[1:])
    while rest:
        token = rest.pop(0)
        option, equals, value = token.partition("=")
        if option in flags and not equals:
            kwargs[flags[option]] = True
        elif option in values:
            if not equals:
                if not rest or rest[0].startswith("-"):
                    return None
                value = rest.pop(0)
            kwargs[values[option]] = value
        else:
            return None
    if "limit" in kwargs:
        if not kwargs["limit"].isdigit():
            return None
        kwargs["limit"] = int(kwargs["limit"])
    if "by" in kwargs:
        if kwargs["by"] not in GroupBy.__members__:
            return None
        kwargs["by"] = GroupBy(kwargs["by"])
    return (signals if name == "signals" else costs), kwargs


def main() -> None:
    """Console-script entry point."""
    plain = _plain_invocation(sys.argv[1:])
    if plain is not None:
        command, kwargs = plain
        collecting = gc.isenabled()
        gc.disable()  # a report makes many objects and keeps them: nothing for the GC to do
        try:
            command(**kwargs)
        except typer.Exit as done:
            sys.exit(done.exit_code)
        except typer.BadParameter:
            pass  # typer says it as it always does (a bad --ledger or --since)
        else:
            return
        finally:
            if collecting:
                gc.enable()
    app()


if __name__ == "__main__":
    main()
