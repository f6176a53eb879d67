"""paid-hooks plugin for LangChain (``pip install 'paid-hooks[langchain]'``).

Two ways in:

* ``PaidLangChainCallback()``: a LangChain callback handler; pass it per call
  (``config={"callbacks": [PaidLangChainCallback()]}``) or with ``with_config``;
* ``paid_hooks.instrument("langchain")``: one always-on handler for every LangChain run in
  the process (through LangChain's ``register_configure_hook``);
  ``paid_hooks.uninstrument("langchain")`` switches it off.

Every chat-model and LLM run becomes one AI call. This module imports nothing from
LangChain until it is used, so loading the plugin is free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_langchain._callback import PaidLangChainCallback

__all__ = ["PaidLangChainCallback", "instrument", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidLangChainCallback": "_callback"})
# uninstrument switches the handler off: LangChain cannot unregister a configure hook.
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._global", "enable",
                                                       "disable")
