"""pytest fixtures: ``paid_ledger`` and ``fake_provider``.

Opt in with ``pytest_plugins = ["paid_hooks.testing.pytest_plugin"]`` in a conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from paid_hooks.testing import FakeProviderServer, LedgerView, temporary_ledger

__all__ = ["fake_provider", "fake_provider_server", "paid_ledger"]


@pytest.fixture
def paid_ledger(tmp_path: Path) -> Iterator[LedgerView]:
    """Tracing initialised into a fresh ledger in ``tmp_path``; shut down afterwards."""
    with temporary_ledger(tmp_path) as view:
        yield view


@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProviderServer]:
    """One fake provider server for the whole session."""
    with FakeProviderServer() as server:
        yield server


@pytest.fixture
def fake_provider(fake_provider_server: FakeProviderServer) -> Iterator[FakeProviderServer]:
    """The session's fake provider server, with no queued replies and an empty log."""
    fake_provider_server.reset()
    yield fake_provider_server
    fake_provider_server.reset()
