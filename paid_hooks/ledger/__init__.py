"""Where priced calls and signals are kept: the ledger, addressed by URL.

``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db``. Without a URL the
library and the CLI both use :func:`default_ledger_url`: the ``PAID_HOOKS_LEDGER``
environment variable, else ``$XDG_DATA_HOME/paid-hooks/ledger.db`` (``XDG_DATA_HOME``
defaulting to ``~/.local/share``).
"""

from __future__ import annotations

import os
from pathlib import Path

from paid_hooks.ledger.exporter import LedgerSpanExporter
from paid_hooks.ledger.sqlite import SQLiteLedger

__all__ = ["LedgerSpanExporter", "SQLiteLedger", "default_ledger_url", "open_ledger"]

ENV_VAR = "PAID_HOOKS_LEDGER"


def default_ledger_url() -> str:
    """The ledger URL used when none is given (library and CLI alike)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return env
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return f"sqlite:///{Path(base) / 'paid-hooks' / 'ledger.db'}"


def open_ledger(url: str | None = None) -> SQLiteLedger:
    """Open (creating if needed) the ledger at ``url``; :class:`ValueError` on a bad URL."""
    url = url or default_ledger_url()
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if not path:
            raise ValueError(f"ledger URL {url!r} has no path")
        return SQLiteLedger(path)
    if url.startswith("sqlite://"):
        raise ValueError(f"ledger URL {url!r}: use sqlite:///relative.db or sqlite:////abs.db")
    if "://" not in url:
        return SQLiteLedger(url)
    raise ValueError(f"unsupported ledger URL {url!r}: expected sqlite:///path/to/ledger.db")
