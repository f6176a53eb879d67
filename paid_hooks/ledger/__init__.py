"""Where priced calls and signals are kept: the ledger, addressed by URL.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` for a local file;
``postgresql://user:password@host:5432/dbname`` (or ``postgres://``) for a PostgreSQL
database shared by many processes (needs ``pip install 'paid-hooks[postgres]'``).
Without a URL the library and the CLI both use :func:`default_ledger_url`: the
``PAID_HOOKS_LEDGER`` environment variable, else ``$XDG_DATA_HOME/paid-hooks/ledger.db``
(``XDG_DATA_HOME`` defaulting to ``~/.local/share``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paid_hooks.ledger._common import LedgerError, SQLLedger
from paid_hooks.ledger.sqlite import SQLiteLedger

if TYPE_CHECKING:
    from paid_hooks.ledger.exporter import LedgerSpanExporter
    from paid_hooks.ledger.postgres import PostgresLedger

__all__ = ["LedgerError", "LedgerSpanExporter", "PostgresLedger", "SQLLedger", "SQLiteLedger",
           "default_ledger_url", "open_ledger"]

ENV_VAR = "PAID_HOOKS_LEDGER"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def default_ledger_url() -> str:
    """The ledger URL used when none is given (library and CLI alike)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'paid-hooks' / 'ledger.db'}"


def open_ledger(url: str | None = None) -> SQLLedger:
    """Open the ledger at ``url`` (a SQLite file is created if needed).

    :class:`ValueError` on a bad URL; :class:`ImportError` naming the extra to install
    for a PostgreSQL URL without psycopg. A PostgreSQL ledger connects on first use.
    """
    url = url or default_ledger_url()
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ValueError(f"ledger URL {url!r} has no path")
        return SQLiteLedger(path)
    if url.startswith("sqlite://"):
        raise ValueError(f"ledger URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
    if url.startswith(POSTGRES_SCHEMES):
        return _postgres_ledger_class()(url)
    if "://" not in url:
        return SQLiteLedger(url)
    scheme = url.split("://", 1)[0]
    raise ValueError(f"unsupported ledger URL {scheme}://...: expected "
                     "sqlite:///path/to/ledger.db or postgresql://user@host/dbname")


def _postgres_ledger_class() -> type[PostgresLedger]:
    try:
        from paid_hooks.ledger.postgres import PostgresLedger
    except ImportError as exc:
        raise ImportError(f"a PostgreSQL ledger needs psycopg 3 ({exc}): "
                          "pip install 'paid-hooks[postgres]'") from exc
    return PostgresLedger


def __getattr__(name: str) -> Any:
    if name == "PostgresLedger":
        return _postgres_ledger_class()
    if name == "LedgerSpanExporter":  # imported on use: it needs the OpenTelemetry SDK,
        from paid_hooks.ledger.exporter import LedgerSpanExporter  # the CLI does not

        return LedgerSpanExporter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
