"""The embedded SQLite ledger: one row per AI call, one per signal, in one local file.

The schema, the row builders and the reports are shared with the other SQL ledgers
(:mod:`paid_hooks.ledger._common`). SQLite has no exact decimal type, so its reports add
``cost_pusd``, the integer count of pico-dollars stored next to each decimal ``cost_usd``.
"""

from __future__ import annotations

import os
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


SQLITE = Dialect(placeholder="?", id_column="INTEGER PRIMARY KEY", count="INTEGER",
                 money="TEXT", real="REAL", cost_sum="SUM(cost_pusd)", cost_total=_pico_total)


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
                    conn.executemany(self.dialect.insert_call(), calls)
                if signals:
                    conn.executemany(self.dialect.insert_signal(), signals)
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
