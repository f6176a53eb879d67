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

import sys
from typing import TYPE_CHECKING, Any

import paid_hooks

if TYPE_CHECKING:
    from paid_hooks_langchain._callback import PaidLangChainCallback

__all__ = ["PaidLangChainCallback", "instrument", "uninstrument"]


def __getattr__(name: str) -> Any:
    if name == "PaidLangChainCallback":
        from paid_hooks_langchain import _callback

        return _callback.PaidLangChainCallback
    raise AttributeError(name)


@paid_hooks.hookimpl
def instrument() -> None:
    """Switch on the process-wide handler; ImportError when langchain-core is missing."""
    from paid_hooks_langchain import _global

    _global.enable()


@paid_hooks.hookimpl
def uninstrument() -> None:
    """Switch the process-wide handler off (LangChain cannot unregister a configure hook)."""
    module = sys.modules.get("paid_hooks_langchain._global")
    if module is not None:
        module.disable()
