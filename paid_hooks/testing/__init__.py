"""Helpers for asserting cost attribution in tests, and a local fake AI provider.

In a test suite, enable the fixtures with ``pytest_plugins = ["paid_hooks.testing.pytest_plugin"]``
(they are not loaded into anyone's test run automatically), then::

    def test_meeting_cost(paid_ledger, fake_provider):
        client = PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key="test"))
        with paid_tracing("acme", external_agent_id="sdr"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[...])
            signal("meeting_booked", enable_cost_tracing=True)
        assert paid_ledger.signals()[0]["ai_calls"] == 1
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from paid_hooks import _runtime
from paid_hooks.ledger import SQLLedger
from paid_hooks.testing.fake.server import (
    Exchange,
    FakeProviderServer,
    FakeReply,
    FakeUsage,
    estimate_tokens,
)
from paid_hooks.testing.offline import offline_server_if_no_key

__all__ = [
    "Exchange",
    "FakeProviderServer",
    "FakeReply",
    "FakeUsage",
    "LedgerView",
    "estimate_tokens",
    "offline_server_if_no_key",
    "temporary_ledger",
]


class LedgerView:
    """Read access to a ledger that flushes the pipeline first, for assertions."""

    def __init__(self, ledger: SQLLedger) -> None:
        self.ledger = ledger

    @property
    def url(self) -> str:
        return self.ledger.url

    def flush(self) -> None:
        if not _runtime.flush(timeout=10):
            raise AssertionError("paid_hooks did not flush within 10 s")

    def calls(self, trace_id: str | None = None) -> list[dict[str, Any]]:
        """Every recorded AI call (ledger rows), optionally of one trace (hex id)."""
        self.flush()
        return self.ledger.calls(trace_id)

    def signals(self, **filters: Any) -> list[dict[str, Any]]:
        """Every signal with its attributed cost (the ``paid-hooks signals --json`` rows)."""
        self.flush()
        return self.ledger.signals(**filters)

    def costs(self, by: str) -> list[dict[str, Any]]:
        """The ``paid-hooks costs --by ... --json`` rows."""
        self.flush()
        return self.ledger.costs(by)

    def trace_cost(self, trace_id: str) -> Decimal:
        """Exact total priced cost of one trace (hex trace id)."""
        return sum((Decimal(c["cost_usd"]) for c in self.calls(trace_id) if c["cost_usd"]),
                   Decimal(0))

    def total_cost(self) -> Decimal:
        return sum((Decimal(c["cost_usd"]) for c in self.calls() if c["cost_usd"]), Decimal(0))


@contextlib.contextmanager
def temporary_ledger(directory: str | Path | None = None, *, url: str | None = None,
                     **settings: Any) -> Iterator[LedgerView]:
    """Initialise tracing into a fresh ledger file for the block, then shut down.

    ``url`` instead names the ledger to use (say a PostgreSQL database); ``directory`` is
    then ignored. Any tracing set-up active before is shut down first.
    """
    _runtime.shutdown()
    with contextlib.ExitStack() as stack:
        if url is None:
            if directory is None:
                directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="paid-hooks-"))
            url = f"sqlite:///{Path(directory) / 'ledger.db'}"
        _runtime.initialize_tracing(ledger=url, flush_at_exit=False, **settings)
        runtime = _runtime.get_runtime()
        assert runtime.ledger_exporter is not None
        ledger = runtime.ledger_exporter.ledger
        assert isinstance(ledger, SQLLedger)
        try:
            yield LedgerView(ledger)
        finally:
            _runtime.shutdown()
