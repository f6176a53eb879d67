"""Helpers for the ledger backend tests: records built directly (no provider, no tracing)
and the CLI run as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from core.conftest import MODEL

from paid_hooks import AICall, CallStatus, CostStatus, Price, PricedCall, SignalRecord, Usage

TRACE = 0xABC
CLI = str(Path(sys.executable).parent / "paid-hooks")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``paid-hooks ARGS`` in a subprocess, 160 columns wide."""
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "160"})


def priced(n: int, amount: str | None, *, trace: int = TRACE, customer: str | None = "acme",
           response_id: str | None = None, usage: Usage | None = None, by: str = "openai",
           model: str = MODEL, status: CostStatus = CostStatus.PRICED,
           started_ns: int = 1_000) -> PricedCall:
    """A priced call record of ``n`` input tokens (span id ``n``)."""
    ai = AICall("openai", "chat", model, model,
                usage if usage is not None else Usage(input_tokens=n, output_tokens=1), by,
                started_ns, started_ns + 500, response_id=response_id or f"r{trace}-{n}",
                status=CallStatus.ERROR if status is CostStatus.NO_CHARGE else CallStatus.OK)
    price = Price(Decimal(amount)) if amount is not None else None
    return PricedCall(ai, trace, n, customer, "sdr", status, price)


def sig(event: str, key: str, at_ns: int, *, trace: int = TRACE, cost: bool = True,
        customer: str = "acme", agent: str = "sdr") -> SignalRecord:
    return SignalRecord(event, customer, agent, trace, key, cost, at_ns, span_id=at_ns)
