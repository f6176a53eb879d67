"""The local fake provider server and its per-provider wire formats."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paid_hooks.testing.fake.server import FakeProviderServer

__all__ = ["PROVIDER_MODULES", "register_all_routes"]

PROVIDER_MODULES = (
    "paid_hooks.testing.fake.openai_format",
    "paid_hooks.testing.fake.anthropic_format",
    "paid_hooks.testing.fake.mistral_format",
    "paid_hooks.testing.fake.gemini_format",
    "paid_hooks.testing.fake.bedrock_format",
)
"""Each module has ``register(server)`` adding its routes."""


def register_all_routes(server: FakeProviderServer) -> None:
    for name in PROVIDER_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(server)
