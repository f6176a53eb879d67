"""What only the PostgreSQL ledger has: parity with SQLite, exact NUMERIC sums, masked
credentials, lazy connection, reconnects, and the install hint without psycopg."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from urllib.parse import quote, quote_plus

import pytest
from core.conftest import MESSAGES, MODEL
from ledger_records import priced, run_cli, sig
from openai import OpenAI

import paid_hooks
from paid_hooks import CostStatus, Usage, paid_tracing, signal
from paid_hooks.ledger import LedgerError, SQLiteLedger, open_ledger
from paid_hooks.ledger._common import SCHEMA_VERSION
from paid_hooks.testing import FakeReply, FakeUsage, temporary_ledger
from paid_hooks_openai import PaidOpenAI

psycopg = pytest.importorskip("psycopg", reason="pip install 'paid-hooks[postgres]'")

from paid_hooks.ledger.postgres import PostgresLedger, mask_url  # noqa: E402

GROUPS = ("signal", "customer", "agent", "model", "provider")


def spellings(password: str) -> set[str]:
    return {password, quote(password, safe=""), quote_plus(password)}


def assert_no_secret(text: str, password: str) -> None:
    for secret in spellings(password):
        assert secret not in text


def with_password(url: str, password: str) -> str:
    """``url`` (``postgresql://user[:old]@host...``) with another password."""
    scheme, rest = url.split("://", 1)
    userinfo, hosts = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':')[0]}:{quote(password, safe='')}@{hosts}"


@pytest.fixture
def pg(postgres_url):
    ledger = open_ledger(postgres_url)
    assert isinstance(ledger, PostgresLedger)
    yield ledger
    ledger.close()


def test_both_backends_report_identical_rows_for_the_same_records(tmp_path, pg):
    """Same records in, same dicts out: exact decimal strings included."""
    calls = [
        priced(1, "7.5E-8", trace=1), priced(2, "0.00100", trace=1),
        priced(3, "1E+1", trace=2, customer="globex"),
        priced(4, "0.000123456789", trace=2, customer="globex",
               usage=Usage(input_tokens=50, output_tokens=7, cache_read_tokens=20,
                           reasoning_tokens=3)),
        priced(5, "0.31", trace=3), priced(6, None, trace=1, status=CostStatus.UNPRICED,
                                           model="private"),
        priced(7, None, trace=2, status=CostStatus.USAGE_UNKNOWN, usage=None),
        priced(8, None, trace=3, status=CostStatus.NO_CHARGE, customer=None),
        priced(9, "0.02", trace=1, response_id="r1-1", by="httpx",
               usage=Usage(input_tokens=1)),  # a poorer duplicate of call 1
    ]
    signals = [sig("booked", "a", 2_000, trace=1),
               sig("email", "b", 1_000, trace=2, customer="globex", agent="support"),
               sig("email", "c", 3_000, trace=2, customer="globex"),  # rejected
               sig("opened", "d", 4_000, trace=3, cost=False)]
    sqlite = SQLiteLedger(tmp_path / "l.db")
    for ledger in (sqlite, pg):
        ledger.write(calls[:4], signals[2:])
        ledger.write(calls[4:], signals[:2])

    def strip_ids(rows):
        return [{k: v for k, v in r.items() if k != "id"} for r in rows]

    assert strip_ids(pg.calls()) == strip_ids(sqlite.calls())
    assert [c["cost_usd"] for c in pg.calls()][:3] == ["7.5E-8", "0.00100", "10"]
    assert pg.signals() == sqlite.signals()
    assert pg.signals()[0]["cost_usd"] == "10.000123456789"
    for by in GROUPS:
        assert pg.costs(by) == sqlite.costs(by), by
        assert pg.outcome_counts(by) == sqlite.outcome_counts(by), by
    assert pg.calls(f"{2:032x}") == [c for c in pg.calls() if c["trace_id"] == f"{2:032x}"]
    sqlite.close()


def test_numeric_sums_are_exact_below_a_pico_dollar(pg):
    """NUMERIC adds the exact amounts; cost_pusd (the SQLite total) is rounded and flagged."""
    pg.write([priced(1, "0.0000000000004"), priced(2, "0.0000000000004"),
              priced(3, "1.0000000000004")], [sig("done", "k", 2_000)])
    [row] = pg.signals()
    assert row["cost_usd"] == "1.0000000000012"
    assert [c["cost_inexact"] for c in pg.calls()] == [1, 1, 1]
    assert [c["cost_pusd"] for c in pg.calls()] == [0, 0, 1_000_000_000_000]


def test_schema_is_created_once_with_its_version(pg, postgres_server, postgres_url):
    pg.write([priced(1, "0.5")], [])
    again = open_ledger(postgres_url.replace("postgresql://", "postgres://", 1))
    assert isinstance(again, PostgresLedger) and len(again.calls()) == 1
    again.close()
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT value FROM meta").fetchall() == [(str(SCHEMA_VERSION),)]
        schema = conn.execute("SELECT current_schema()").fetchone()[0]
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'ai_calls'", (schema,)).fetchall())
    assert types["cost_usd"] == "numeric" and types["cost_pusd"] == "bigint"
    assert schema.startswith("t_"), "the tables live in the schema the URL names"


def test_a_dropped_connection_is_replaced_without_losing_the_batch(pg, postgres_server):
    def kill_ledger_connections() -> None:
        with postgres_server.connect() as admin:
            killed = admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'paid-hooks' AND pid <> pg_backend_pid()").fetchall()
        assert killed and all(ok for (ok,) in killed)

    pg.write([priced(1, "0.5")], [sig("done", "k", 2_000)])
    kill_ledger_connections()
    pg.write([priced(2, "0.25")], [])   # meets the dead connection: retried on a new one
    kill_ledger_connections()
    [row] = pg.signals()
    assert (row["ai_calls"], row["cost_usd"]) == (2, "0.75")


def test_credentials_never_show_in_url_repr_or_cli(postgres_server, postgres_url, pg):
    password = postgres_server.password
    if password is None:
        pytest.skip(f"the server of {postgres_server.url!r} asks for no password")
    assert "***" in pg.url and "***" in repr(pg) and "***" in str(pg)
    for text in (pg.url, repr(pg), str(pg)):
        assert_no_secret(text, password)
    pg.write([priced(1, "0.5")], [sig("done", "k", 2_000)])
    for args in (("signals", "--json"), ("signals",), ("costs", "--by", "customer")):
        result = run_cli(*args, "--ledger", postgres_url)
        assert result.returncode == 0, result.stderr
        assert_no_secret(result.stdout + result.stderr, password)
    assert json.loads(run_cli("signals", "--json", "--ledger", postgres_url).stdout)[0][
        "cost_usd"] == "0.5"


def test_wrong_password_is_a_clear_cli_error_without_the_password(postgres_server,
                                                                   postgres_url):
    if postgres_server.password is None:
        pytest.skip(f"the server of {postgres_server.url!r} asks for no password")
    wrong = "Wr0ng@pass/word%-7f3a"
    bad_url = with_password(postgres_url, wrong)
    result = run_cli("signals", "--json", "--ledger", bad_url)
    assert result.returncode == 1
    assert f"Error: PostgreSQL ledger {mask_url(bad_url)}: query failed" in result.stderr
    assert "password authentication failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secret(result.stdout + result.stderr, wrong)
    assert_no_secret(result.stdout + result.stderr, postgres_server.password)


def test_initialize_tracing_does_not_connect_and_failures_are_logged_masked(
        unused_port, fake_provider, caplog):
    """An unreachable ledger: set-up succeeds, the app's calls work, logs hold no password."""
    password = "s3cret@pw/%-41d2"
    url = f"postgresql://billing:{quote(password, safe='')}@127.0.0.1:{unused_port}/ledger"
    client = PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key="sk-test-key",
                               max_retries=0))
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10)))
    caplog.set_level(logging.DEBUG)
    with temporary_ledger(url=url) as view:
        runtime = paid_hooks._runtime.get_runtime()
        assert runtime.ledger_url == view.url == (
            f"postgresql://billing:***@127.0.0.1:{unused_port}/ledger")
        with paid_tracing("acme", external_agent_id="sdr"):
            reply = client.chat.completions.create(model=MODEL, messages=MESSAGES)
            signal("done", enable_cost_tracing=True)
        assert reply.usage.prompt_tokens == 100
        paid_hooks.flush(timeout=10)
        assert runtime.ledger_exporter.failed_batches >= 1
        with pytest.raises(LedgerError, match=r"connect|refused|failed") as failure:
            view.ledger.calls()
    logged = caplog.text
    assert "could not write" in logged
    assert "billing:***@127.0.0.1" in logged
    assert_no_secret(logged + str(failure.value), password)


def test_bad_urls_are_value_errors_without_the_password():
    with pytest.raises(ValueError, match="postgresql://u:\\*\\*\\*@h/db") as bad:
        open_ledger("postgresql://u:hunter2@h/db?no_such_option=1")
    assert "hunter2" not in str(bad.value)
    result = run_cli("signals", "--ledger", "mysql://u:hunter2@h/db")
    assert result.returncode == 2 and "unsupported ledger URL" in result.stderr
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(("url", "masked"), [
    ("postgresql://u:p%40ss@h:5432/db", "postgresql://u:***@h:5432/db"),
    ("postgres://u:p@ss@h/db?sslmode=require", "postgres://u:***@h/db?sslmode=require"),
    ("postgresql://u@h1:5432,h2:5433/db?password=x%26y&application_name=a",
     "postgresql://u@h1:5432,h2:5433/db?password=***&application_name=a"),
    ("postgresql:///db?host=/run/postgresql", "postgresql:///db?host=/run/postgresql"),
    ("postgresql://u:pa/ss#x@h/db", "postgresql://u:***@h/db"),
])
def test_mask_url(url, masked):
    assert mask_url(url) == masked
    assert PostgresLedger(url).url == masked


def test_missing_psycopg_names_the_extra_to_install(monkeypatch):
    for name in list(sys.modules):
        if name == "psycopg" or name.startswith("psycopg.") or name == "paid_hooks.ledger.postgres":
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ImportError, match=r"pip install 'paid-hooks\[postgres\]'"):
        open_ledger("postgresql://u:p@127.0.0.1/db")
    with pytest.raises(ImportError, match=r"paid-hooks\[postgres\]"):
        from paid_hooks.ledger import PostgresLedger as _  # noqa: F401


def test_cli_without_psycopg_prints_the_install_hint():
    script = ("import sys; sys.modules['psycopg'] = None; sys.argv = ['paid-hooks', 'signals', "
              "'--ledger', 'postgresql://u:hunter2@127.0.0.1/db']; "
              "from paid_hooks.cli import main; main()")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "pip install 'paid-hooks[postgres]'" in result.stderr
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr
