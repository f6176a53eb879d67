"""paid-hooks plugin for the OpenAI Python SDK (``pip install 'paid-hooks[openai]'``).

Two ways in:

* ``PaidOpenAI(OpenAI(...))`` / ``PaidAsyncOpenAI(AsyncOpenAI(...))``: a wrapper that
  behaves exactly like the client it wraps and records every instrumented call;
* ``paid_hooks.instrument("openai")``: patches the SDK's resource classes so that plain
  ``OpenAI()`` clients are recorded too; ``paid_hooks.uninstrument("openai")`` restores them.

Recorded, sync, async and streamed: chat completions (``create``, ``parse``, ``stream``),
responses (``create``, ``parse``, ``stream``), embeddings, images (``generate``, ``edit``),
audio transcriptions and speech, also through ``with_raw_response`` /
``with_streaming_response``. The coverage table is in this package's README.md.

This module imports nothing from ``openai`` until it is used, so loading the plugin is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_openai._wrapper import PaidAsyncOpenAI, PaidOpenAI

__all__ = ["PaidAsyncOpenAI", "PaidOpenAI", "instrument", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidOpenAI": "_wrapper",
                                                 "PaidAsyncOpenAI": "_wrapper"})
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._patch")
