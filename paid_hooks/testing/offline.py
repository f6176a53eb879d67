"""Run examples offline: start the fake provider when no real API key is set."""

from __future__ import annotations

import atexit
import os
import sys
import threading

from paid_hooks.testing.fake.server import FakeProviderServer

__all__ = ["offline_server_if_no_key"]

_lock = threading.Lock()
_server: FakeProviderServer | None = None


def offline_server_if_no_key(*env_vars: str) -> FakeProviderServer | None:
    """The local fake provider (started once, stopped at exit) unless all ``env_vars`` are set.

    Returns ``None`` when a key is set: the caller then talks to the real service. Prints
    one line saying which it is, so nobody mistakes fake numbers for real ones.
    """
    global _server
    if all(os.environ.get(name) for name in env_vars):
        names = "/".join(env_vars)
        print(f"[paid-hooks] {names} set: calling the real provider", file=sys.stderr)
        return None
    with _lock:
        if _server is None:
            _server = FakeProviderServer().start()
            atexit.register(_server.stop)
            print(f"[paid-hooks] no {' / '.join(env_vars)} set: using the local fake provider "
                  f"at {_server.url} (offline, no cost)", file=sys.stderr)
    return _server
