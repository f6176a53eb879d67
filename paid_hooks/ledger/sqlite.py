"""The embedded SQLite ledger: one row per AI call, one per signal, in one local file.

The schema, the row builders and the reports are shared with the other SQL ledgers
(:mod:`paid_hooks.ledger._common`). SQLite has no exact decimal type, so its reports add
``cost_pusd``, the integer count of pico-dollars stored next to each decimal ``cost_usd``.
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from paid_hooks.ledger._common import (
    PICO,
    Dialect,
    SQLLedger,
    call_row,
    signal_row,
)

__all__ = ["PICO", "SQLITE", "SQLiteLedger", "call_row", "signal_row"]


def _pico_total(value: Any) -> Decimal | None:
    """A sum of ``cost_pusd`` (pico-dollars), as dollars."""
    return None if value is None else Decimal(value) / PICO


_MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
_MAX_ROWS = 256
_VALUES = re.compile(r"VALUES\s*\((\?(?:\s*,\s*\?)*)\)")


@functools.lru_cache(maxsize=64)
def _multi_row_sql(sql: str, rows: int) -> str:
    """``sql`` (one ``VALUES (?,...)`` row) inserting ``rows`` rows in one statement."""
    match = _VALUES.search(sql)
    if match is None:
        raise ValueError("not a single-row INSERT ... VALUES (...) statement")
    row = f"({match.group(1)})"
    return f"{sql[:match.start()]}VALUES {','.join([row] * rows)}{sql[match.end():]}"


def _insert_many(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` with multi-row statements: the same effect as ``executemany``.

    SQLite applies the rows of one ``INSERT ... VALUES (...), (...)`` in order, each
    against the rows before it (``ON CONFLICT`` included), exactly as ``executemany``
    would. The difference is the GIL: the sqlite3 module releases it around every
    statement step, so ``executemany`` gives it up once per row, and a writer thread then
    waits up to the interpreter's switch interval (5 ms) to get it back from a busy
    application thread, per row. Chunks of 256, then powers of two, keep the number of
    distinct statements (and so of compilations) small.
    """
    width = len(rows[0])
    per_statement = max(1, min(_MAX_ROWS, _MAX_VARIABLES // width))
    start = 0
    while start < len(rows):
        left = len(rows) - start
        count = per_statement if left >= per_statement else 1 << (left.bit_length() - 1)
        chunk = rows[start:start + count]
        conn.execute(_multi_row_sql(sql, count),
                     [value for row in chunk for value in row])
        start += count


SQLITE = Dialect(placeholder="?", id_column="INTEGER PRIMARY KEY", count="INTEGER",
                 money="TEXT", real="REAL", cost_sum="SUM(cost_pusd)", cost_total=_pico_total,
                 materialize=sqlite3.sqlite_version_info >= (3, 35))


class SQLiteLedger(SQLLedger):
    """A ledger in one SQLite file (WAL mode, created owner-read/write only)."""

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
        conn = self._conn()
        conn.executescript(self.dialect.schema())
        conn.execute(*self.dialect.schema_version_row())
        conn.commit()

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
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _write_rows(self, calls: list[tuple[Any, ...]], signals: list[tuple[Any, ...]]) -> None:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if calls:
                    _insert_many(conn, self.dialect.insert_call(), calls)
                if signals:
                    _insert_many(conn, self.dialect.insert_signal(), signals)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn().execute(sql, tuple(params))]

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
