"""Test-suite guards: no network beyond loopback, and no ledger outside tmp dirs."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile

import pytest

# A trace started without the paid_ledger fixture must not write to the user's home.
os.environ["PAID_HOOKS_LEDGER"] = os.path.join(
    tempfile.mkdtemp(prefix="paid-hooks-tests-"), "default-ledger.db")
CREDENTIAL_VARS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "MISTRAL_API_KEY", "GOOGLE_API_KEY",
                   "GEMINI_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                   "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK")
for key in CREDENTIAL_VARS:
    os.environ.pop(key, None)

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check(address: object) -> None:
    if isinstance(address, tuple) and address:
        host = str(address[0])
        try:
            if ipaddress.ip_address(host).is_loopback:
                return
        except ValueError:
            if host == "localhost":
                return
        raise OSError(f"tests may not reach the network (tried {host})")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check(address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
