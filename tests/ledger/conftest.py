"""Ledger backends for the contract tests: SQLite, and PostgreSQL on a real server.

The PostgreSQL server is ``$PAID_HOOKS_TEST_POSTGRES_URL`` when set (a database the URL's
user may create schemas in). Otherwise a throwaway cluster is made for the session with the
server binaries under ``/usr/lib/postgresql/*/bin`` (or on ``PATH``): in a temp dir,
listening on a free port of 127.0.0.1 only, with password authentication, run as the
``postgres`` system user when the tests run as root. Without binaries the PostgreSQL tests
are skipped, saying how to install them. Each test gets a fresh schema of its own.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from paid_hooks.ledger import SQLLedger, open_ledger
from paid_hooks.testing import LedgerView, temporary_ledger

URL_VAR = "PAID_HOOKS_TEST_POSTGRES_URL"
INSTALL_HINT = (f"install the PostgreSQL server (apt-get install postgresql) or set {URL_VAR} "
                "to a database URL")
SERVER_USER = "postgres"
BACKENDS = ["sqlite", "postgresql"]


@dataclass
class PostgresServer:
    """A reachable PostgreSQL database; ``password`` is the one in ``url`` (or ``None``)."""

    url: str
    password: str | None

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def schema_url(self, schema: str) -> str:
        """``url`` with ``schema`` as the search path (where the ledger's tables go)."""
        sep = "&" if "?" in self.url else "?"
        return f"{self.url}{sep}options={quote(f'-csearch_path={schema}', safe='')}"


def _server_bindir() -> Path | None:
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path))

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    initdb = found[-1] if found else shutil.which("initdb")
    if initdb is None:
        return None
    bindir = Path(initdb).resolve().parent
    return bindir if (bindir / "pg_ctl").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run(cmd: list[str], user: str | None, cwd: Path) -> None:
    """Run a server tool, as ``user`` when given (postgres refuses to run as root)."""
    if user is not None:
        cmd = (["runuser", "-u", user, "--", *cmd] if shutil.which("runuser")
               else ["su", user, "-c", subprocess.list2cmdline(cmd)])
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")


@contextlib.contextmanager
def _throwaway_cluster(bindir: Path) -> Iterator[PostgresServer]:
    """A new cluster in a temp dir on 127.0.0.1:<free port>; stopped and removed after."""
    user: str | None = None
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.skip(f"running as root, the test cluster needs the {SERVER_USER!r} system "
                        f"user that the Debian package creates: {INSTALL_HINT}")
        user = SERVER_USER
    root = Path(tempfile.mkdtemp(prefix="paid-hooks-pg-"))
    data = root / "data"
    password = f"pw@{secrets.token_hex(8)}/:%"  # characters that need quoting in a URL
    (root / "pwfile").write_text(password + "\n")
    if user is not None:
        for path in (root, root / "pwfile"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    started = False
    try:
        _run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
              "--no-locale", "--auth=scram-sha-256", f"--pwfile={root / 'pwfile'}",
              "--no-sync"], user, root)
        options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {root} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        _run([str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"),
              "-o", options, "-w", "-t", "60", "start"], user, root)
        started = True
        base = f"postgresql://postgres:{quote(password, safe='')}@127.0.0.1:{port}"
        with PostgresServer(f"{base}/postgres", password).connect() as conn:
            conn.execute("CREATE DATABASE paid_hooks_test")
        yield PostgresServer(f"{base}/paid_hooks_test", password)
    finally:
        if started:
            _run([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                 user, root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL database for the session (see the module docstring); skips if none."""
    pytest.importorskip("psycopg", reason="pip install 'paid-hooks[postgres]'")
    url = os.environ.get(URL_VAR)
    if url:
        from psycopg.conninfo import conninfo_to_dict

        yield PostgresServer(url, conninfo_to_dict(url).get("password"))
        return
    bindir = _server_bindir()
    if bindir is None:
        pytest.skip(f"no PostgreSQL server binaries found: {INSTALL_HINT}")
    with _throwaway_cluster(bindir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty schema of the test database (dropped afterwards)."""
    schema = f"t_{secrets.token_hex(6)}"
    with postgres_server.connect() as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield postgres_server.schema_url(schema)
    finally:
        with postgres_server.connect() as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def open_backend(ledger_url: str) -> Iterator[Callable[[], SQLLedger]]:
    """Opens ledgers on ``ledger_url`` (a new object each call); closes them afterwards."""
    opened: list[SQLLedger] = []

    def opener() -> SQLLedger:
        opened.append(open_ledger(ledger_url))
        return opened[-1]

    yield opener
    for ledger in opened:
        ledger.close()


@pytest.fixture
def backend_ledger(ledger_url: str) -> Iterator[LedgerView]:
    """Tracing initialised into ``ledger_url`` (like ``paid_ledger``, once per backend)."""
    with temporary_ledger(url=ledger_url) as view:
        yield view


@pytest.fixture
def unused_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (for unreachable-server tests)."""
    return _free_port()
