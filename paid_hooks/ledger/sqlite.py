"""The embedded SQLite ledger: one row per AI call, one per signal, in one local file.

The schema, the row builders and the reports are shared with the other SQL ledgers
(:mod:`paid_hooks.ledger._common`). SQLite has no exact decimal type, so its reports add
``cost_pusd``, the integer count of pico-dollars stored next to each decimal ``cost_usd``.

Durability: WAL journal with ``synchronous=NORMAL``. A committed batch survives a crash of
the process; a power loss or OS crash may lose the last batches committed before it (the
WAL is synced at checkpoints, not at every commit), never the consistency of the file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from itertools import chain, repeat
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from paid_hooks.ledger._common import (
    CALL_COLUMNS,
    PICO,
    SCHEMA_VERSION,
    SIGNAL_COLUMNS,
    SIGNAL_TOTALS,
    SQLITE_BEHIND,
    Dialect,
    SQLLedger,
    call_row,
    call_row_parts,
    check_schema_version,
    parse_schema_version,
    pico_usd,
    signal_row,
    sqlite_summarize_calls,
)
from paid_hooks.model import PricedCall, SignalRecord

__all__ = ["PICO", "SQLITE", "SQLiteLedger", "call_row", "signal_row"]


def _pico_total(value: Any) -> Decimal | None:
    """A sum of ``cost_pusd`` (pico-dollars), as dollars."""
    return None if value is None else Decimal(value) / PICO


_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
"""SQLite's default limit on the variables of one statement (``SQLITE_MAX_VARIABLE_NUMBER``)."""
_VALUES = re.compile(r"VALUES\s*\((\?(?:\s*,\s*\?)*)\)")
_CACHE_KIB = 8192
"""Page cache per connection (``PRAGMA cache_size``): with the default 2 MB, an insert at a
random place of the unique index reads its page again once the ledger outgrows it."""
_CHECKPOINT_PAGES = 4000
"""``PRAGMA wal_autocheckpoint``: copy the WAL into the database every 16 MB of it rather
than every 4 MB; pages written again in between (index pages, summaries) are copied
once, and the checkpoints' syncs are fewer."""


_NULL = float("nan")
"""Bound in place of ``None``: SQLite stores a NaN as NULL. The sqlite3 module binds int,
float, str and bytes directly but sends every other value, ``None`` included, through its
adapter registry, whose miss costs a formatted AttributeError (about a microsecond, and a
ledger row has several NULLs)."""


@functools.lru_cache(maxsize=64)
def _multi_row_sql(sql: str, rows: int) -> str:
    """``sql`` (one ``VALUES (?,...)`` row) inserting ``rows`` rows in one statement.

    Plain ``?`` values only: SQLite compiles such a statement in about a millisecond, but
    one whose rows hold expressions (even ``?1 / 1e9``) in time quadratic in its rows
    (about 0.3 s for 256 rows, once per connection).
    """
    match = _VALUES.search(sql)
    if match is None:
        raise ValueError("not a single-row INSERT ... VALUES (...) statement")
    row = f"({match.group(1)})"
    return f"{sql[:match.start()]}VALUES {','.join([row] * rows)}{sql[match.end():]}"


def _sqlite_call_row(rec: PricedCall) -> tuple[Any, ...]:
    """:func:`call_row`, ready to bind (:data:`_NULL` for ``None``)."""
    return call_row(rec, _NULL)


# (null bound positionally: a partial with a keyword builds a dict on every call)
_sqlite_call_row.parts = functools.partial(call_row_parts, _NULL)  # type: ignore[attr-defined]


def _sqlite_signal_row(rec: SignalRecord) -> tuple[Any, ...]:
    """:func:`signal_row`, ready to bind (:data:`_NULL` for ``None``)."""
    return tuple([_NULL if value is None else value for value in signal_row(rec)])


def _insert_many(conn: sqlite3.Connection, sql: str, values: list[Any], width: int,
                 max_variables: int = _MAX_VARIABLES) -> None:
    """Insert the rows whose values ``values`` holds one row after another (``width``
    values a row, ready to bind: no ``None``) with multi-row statements: the same effect
    as ``executemany``, for an upsert that a row repeated right after itself leaves alone
    (both of ours: ``ON CONFLICT ... DO NOTHING``, and ``DO UPDATE ... WHERE
    excluded.richness > ai_calls.richness``: never true of a row against itself).

    SQLite applies the rows of one ``INSERT ... VALUES (...), (...)`` in order, each
    against the rows before it (``ON CONFLICT`` included), exactly as ``executemany``
    would. The difference is the GIL: the sqlite3 module releases it around every
    statement step, and the thread then waits up to the interpreter's switch interval
    (5 ms) to get it back from busy Python threads (the application's, the pipeline
    worker's; ~10 ms a statement measured with both busy): ``executemany`` pays that per
    row, a multi-row statement once. So the statements are few and big: up to
    :data:`_MAX_ROWS` rows as ``max_variables`` allows (the connection's limit), and a
    few fixed smaller sizes (:data:`_TAIL_SIZES`) for the rest, the last one made up with
    copies of the last row, which change nothing (at most as many copies as rows, ~1.5 µs
    each). Ingest benchmark: 8,192 records in 8 statements of 1,024 rows instead of ~36
    of 256. Few distinct statements, each compiled once per connection. Each statement
    binds a slice of ``values``: no tuple per row on the way.
    """
    sizes = _statement_sizes(width, max_variables)
    start = 0
    total = len(values) // width
    while start < total:
        left = total - start
        size = _next_size(sizes, left)
        if size > left:  # the last statement: left rows and copies of the last one
            params = values[start * width:]
            params += params[-width:] * (size - left)  # no-op copies (see above)
            conn.execute(_multi_row_sql(sql, size), params)
            return
        conn.execute(_multi_row_sql(sql, size), values[start * width:(start + size) * width])
        start += size


_CALL_WIDTH = len(CALL_COLUMNS)
_SIGNAL_WIDTH = len(SIGNAL_COLUMNS)

_MAX_ROWS = 1024
"""Rows of one INSERT at most (where the variable limit allows: SQLite's own default is
32,766 variables, 1,056 call rows; Debian's and others' builds raise it to 250,000). A
compiled statement costs ~4.4 kB of memory a row (31 values), kept in the connection's
statement cache: ~6 MB for the four sizes, once per writing connection. 4,096 rows gave
~3k calls/s more in the ingest benchmark (47k against 44k, median of 3) for ~22 MB:
not a trade to impose on every process of an application."""
_TAIL_SIZES = (1, 64, 256, 1024)
"""The smaller statement sizes, for what is left below the biggest."""


@functools.lru_cache(maxsize=16)
def _statement_sizes(width: int, max_variables: int) -> tuple[int, ...]:
    """The row counts of the statements inserting rows of ``width`` values, ascending: the
    most one statement binds (``max_variables``, :data:`_MAX_ROWS`) last."""
    most = max(1, min(_MAX_ROWS, max_variables // width))
    return (*(size for size in _TAIL_SIZES if size < most), most)


def _next_size(sizes: tuple[int, ...], left: int) -> int:
    """The size of the next statement for ``left`` rows: all of them (with copies, at most
    as many as rows, or fewer than 64) when a size allows, else the biggest that fits."""
    for size in sizes:
        if size >= left:
            if size - left <= max(left, 63):
                return size
            break
    return max(size for size in sizes if size <= left)


_SUMMARIZE = sqlite_summarize_calls()


def _pico_text_sql(value: str) -> str:
    """SQL: :func:`~paid_hooks.ledger._common.pico_usd` of an integer expression."""
    return (f"CASE WHEN {value} = 0 THEN '0' ELSE "
            f"CASE WHEN {value} < 0 THEN '-' ELSE '' END || (abs({value}) / 1000000000000) "
            f"|| rtrim(rtrim('.' || substr('000000000000' || (abs({value}) % 1000000000000), "
            f"-12), '0'), '.') END")


def _json_string_sql(value: str) -> str:
    return f"CASE WHEN {value} IS NULL THEN 'null' ELSE json_quote({value}) END"


# One signal's JSON text as json.dumps(signals(), indent=2) writes it, up to the value of
# created_at (a float: Python's repr, written by Python). A JSON string written by
# json_quote is the one Python writes as far as ASCII but DEL goes (checked at run time);
# DEL and non-ASCII characters, which json_quote leaves as they are, are escaped after, in
# Python. "data" holds \x01 (a raw control character, which JSON text never holds) when
# the signal has data, for Python to fill in.
_SIGNAL_JSON = f"""printf('{{
    "event_name": %s,
    "external_customer_id": %s,
    "external_agent_id": %s,
    "trace_id": %s,
    "enable_cost_tracing": %s,
    "cost_tracing": "%s",
    "rejection_reason": %s,
    "cost_usd": "%s",
    "ai_calls": %d,
    "input_tokens": %d,
    "output_tokens": %d,
    "unpriced_calls": %d,
    "usage_unknown_calls": %d,
    "idempotency_key": %s,
    "data": %s,
    "created_at": ',
    json_quote(s.event_name), json_quote(s.external_customer_id),
    json_quote(s.external_agent_id), json_quote(s.trace_id),
    CASE WHEN s.enable_cost_tracing <> 0 THEN 'true' ELSE 'false' END,
    CASE WHEN t.signal_id IS NOT NULL THEN 'attributed'
         WHEN s.enable_cost_tracing <> 0 THEN 'rejected' ELSE 'none' END,
    CASE WHEN t.signal_id IS NULL AND s.enable_cost_tracing <> 0
         THEN json_quote(COALESCE(NULLIF(s.rejection_reason, ''), 'second_cost_signal_in_trace'))
         ELSE {_json_string_sql("NULLIF(s.rejection_reason, '')")} END,
    CASE WHEN t.signal_id IS NULL THEN '0' ELSE {_pico_text_sql(SIGNAL_TOTALS["cost"])} END,
    {SIGNAL_TOTALS["calls"]}, {SIGNAL_TOTALS["input_tokens"]}, {SIGNAL_TOTALS["output_tokens"]},
    {SIGNAL_TOTALS["unpriced"]}, {SIGNAL_TOTALS["unknown"]},
    json_quote(s.idempotency_key),
    CASE WHEN s.data_json IS NULL OR s.data_json = '' THEN 'null' ELSE char(1) END)"""

_PIECE_ROWS = 200
"""Signals per piece of the JSON text: about 100 kB, below malloc's threshold for mapping
fresh pages (whose first touch costs a page fault each)."""
_NOT_PRINTABLE_ASCII = re.compile("[^\x00-\x7e]")


def _escape_like_python(match: re.Match[str]) -> str:
    return encode_basestring_ascii(match.group())[1:-1]


def _json_pieces(fetch: Callable[[], list[Any]]) -> Iterator[str]:
    """The JSON text of the rows of :data:`_SIGNAL_JSON` that ``fetch`` returns, a few
    hundred at a time, until it returns none."""
    rows = fetch()
    if not rows:
        yield "[]"
        return
    pending = "[\n  "
    while rows:
        texts, created, data = zip(*rows, strict=True)
        if any(data):
            texts = tuple(text if not value else text.replace(
                "\x01", json.dumps(json.loads(value), indent=2).replace("\n", "\n    "), 1)
                for text, value in zip(texts, data, strict=True))
        text = "".join(chain.from_iterable(zip(
            texts, map(float.__repr__, created), repeat("\n  },\n  "), strict=False)))
        if not text.isascii() or "\x7f" in text:
            # json_quote leaves these as they are, inside JSON strings (all else is
            # ASCII); json.dumps escapes each on its own, which this does the same way.
            text = _NOT_PRINTABLE_ASCII.sub(_escape_like_python, text)
        yield pending
        pending = text
        rows = fetch()
    yield pending[:-4] + "\n]"  # without the last ",\n  "


_JSON_PROBE = "".join(map(chr, range(1, 127))) + "\x00"


def _json_quote_matches_python(conn: sqlite3.Connection) -> bool:
    """Whether this SQLite's ``json_quote`` writes every ASCII character but DEL as
    Python's ``json.dumps`` does (escapes included)."""
    try:
        quoted = conn.execute("SELECT json_quote(?)", (_JSON_PROBE,)).fetchone()[0]
    except sqlite3.Error:
        return False
    return bool(quoted == encode_basestring_ascii(_JSON_PROBE))

SQLITE = Dialect(placeholder="?", id_column="INTEGER PRIMARY KEY", count="INTEGER",
                 money="TEXT", real="REAL", cost_column="cost_pusd", cost_sum_type="INTEGER",
                 cost_total=_pico_total, cost_text=pico_usd, without_rowid=" WITHOUT ROWID",
                 signals_index_hint="INDEXED BY signals_created",
                 materialize=sqlite3.sqlite_version_info >= (3, 35))


def _schema_version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return parse_schema_version(row[0] if row else None)


class SQLiteLedger(SQLLedger):
    """A ledger in one SQLite file (WAL mode, created owner-read/write only).

    Opening a ledger made by paid-hooks before schema version 2 migrates it (builds the
    report summaries from its rows, one transaction); a ledger of a newer schema raises
    :class:`~paid_hooks.ledger._common.LedgerError`.
    """

    dialect = SQLITE

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            if not os.path.exists(self.path):
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        self._ensure_schema()

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
            conn.execute(f"PRAGMA wal_autocheckpoint={_CHECKPOINT_PAGES}")
            conn.execute("PRAGMA journal_size_limit=67108864")  # the WAL file: 64 MB at most
            conn.execute("PRAGMA temp_store=MEMORY")  # the reports' temporary b-trees
            self._local.conn = conn
            self._local.max_variables = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        return conn

    def _ensure_schema(self) -> None:
        """Create the tables, or migrate an older ledger (see the class docstring)."""
        conn = self._conn()
        version = _schema_version(conn)
        if version == SCHEMA_VERSION:
            return
        check_schema_version(version, self.url)
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = _schema_version(conn)  # another process may have done it
                check_schema_version(version, self.url)
                if version != SCHEMA_VERSION:
                    for statement in self.dialect.migration(version):
                        conn.execute(statement)
                    conn.execute(*self.dialect.schema_version_row())
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def row_builders(self) -> tuple[Callable[[PricedCall], tuple[Any, ...]],
                                    Callable[[SignalRecord], tuple[Any, ...]]]:
        """Rows ready to bind: :data:`_NULL` in place of ``None``."""
        return _sqlite_call_row, _sqlite_signal_row

    def _write_rows(self, calls: list[Any], signals: list[tuple[Any, ...]]) -> None:
        """Rows from :meth:`row_builders` (no ``None``: see :data:`_NULL`), calls flat."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                max_variables = self._local.max_variables
                if calls:
                    _insert_many(conn, self.dialect.insert_call(), calls, _CALL_WIDTH,
                                 max_variables)
                    for statement in _SUMMARIZE:
                        conn.execute(statement)
                if signals:
                    _insert_many(conn, self.dialect.insert_signal(),
                                 list(chain.from_iterable(signals)), _SIGNAL_WIDTH,
                                 max_variables)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _prepare_reports(self) -> None:
        """Count calls that an older paid-hooks wrote (it does not) before reporting."""
        conn = self._conn()
        if not conn.execute(SQLITE_BEHIND).fetchone()[0]:
            return
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SUMMARIZE:
                    conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def signals_json(self, *, customer: str | None = None, agent: str | None = None,
                     since: float | None = None, limit: int = 0) -> Iterator[str] | None:
        """The text of ``json.dumps(signals(...)[-limit:], indent=2)`` (every signal for
        ``limit=0``), in pieces, written by SQLite rather than through Python objects:
        several times faster, for the CLI's ``signals --json``.

        ``None`` if this SQLite's ``json_quote`` escapes ASCII differently from Python
        (checked once per connection); use :meth:`signals` then.
        """
        conn = self._conn()
        if not _json_quote_matches_python(conn):
            return None
        self._prepare_reports()
        params = [v for v in (customer, agent, since) if v is not None]
        sql = self._signals_query(f"SELECT {_SIGNAL_JSON}, s.created_at, s.data_json",
                                  customer, agent, since)
        cursor = conn.execute(sql, params)
        if limit:
            last = deque(cursor, maxlen=limit)
            return _json_pieces(
                lambda: [last.popleft() for _ in range(min(_PIECE_ROWS, len(last)))])
        return _json_pieces(lambda: cursor.fetchmany(_PIECE_ROWS))

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self._conn().execute(sql, tuple(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = self._conn().execute(sql, tuple(params)).fetchall()
        return rows

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
