"""paid-hooks plugin for LlamaIndex (``pip install 'paid-hooks[llamaindex]'``).

Two ways in:

* ``paid_hooks.instrument("llamaindex")`` (or ``PaidLlamaIndexHandler.register()``):
  attaches an event handler and a span handler to LlamaIndex's root instrumentation
  dispatcher, so every LLM call (chat, complete, streams, structured predict) and every
  embedding batch of the process is recorded; ``paid_hooks.uninstrument("llamaindex")``
  (or ``PaidLlamaIndexHandler.unregister()``) removes exactly those handlers again.
* ``PaidLlamaIndexOpenAI``: a drop-in ``llama_index.llms.openai.OpenAI`` that asks OpenAI
  for usage on streamed calls (the stock class never does), so streams can be priced.

This module imports nothing from LlamaIndex until it is used, so loading it is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import paid_hooks
from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_llamaindex._handler import PaidLlamaIndexHandler
    from paid_hooks_llamaindex._openai_llm import PaidLlamaIndexOpenAI

__all__ = ["PaidLlamaIndexHandler", "PaidLlamaIndexOpenAI", "instrument", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidLlamaIndexHandler": "_handler",
                                                 "PaidLlamaIndexOpenAI": "_openai_llm"})


@paid_hooks.hookimpl
def instrument() -> None:
    """Register the handlers on the root dispatcher. Raises ImportError without LlamaIndex."""
    import importlib.util

    if importlib.util.find_spec("llama_index.core") is None:  # the extra: llama-index-core
        raise ImportError("llama-index-core is not installed")
    from paid_hooks_llamaindex._handler import PaidLlamaIndexHandler

    PaidLlamaIndexHandler.register()


@paid_hooks.hookimpl
def uninstrument() -> None:
    import sys

    handler_module = sys.modules.get("paid_hooks_llamaindex._handler")
    if handler_module is not None:
        handler_module.PaidLlamaIndexHandler.unregister()
