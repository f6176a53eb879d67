"""paid-hooks plugin for the OpenAI Agents SDK (``pip install 'paid-hooks[openai-agents]'``).

Two ways in:

* ``Runner.run(agent, input, hooks=PaidOpenAIAgentsHook())`` (also ``run_sync`` and
  ``run_streamed``): records each model call of that run from ``on_llm_end``, priced
  under the model of the agent that made it;
* ``paid_hooks.instrument("openai_agents")``: adds a tracing processor
  (:func:`tracing_processor`) that records every model span of every traced run;
  ``paid_hooks.uninstrument("openai_agents")`` makes it inert.

Both, and the OpenAI provider plugin, may be active together: each model call is still
recorded once. This module imports nothing from ``agents`` until it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paid_hooks import plugin_kit

if TYPE_CHECKING:
    from paid_hooks_openai_agents._hook import PaidOpenAIAgentsHook
    from paid_hooks_openai_agents._processor import PaidTracingProcessor

__all__ = ["PaidOpenAIAgentsHook", "instrument", "tracing_processor", "uninstrument"]

__getattr__ = plugin_kit.lazy_exports(__name__, {"PaidOpenAIAgentsHook": "_hook"})
instrument, uninstrument = plugin_kit.instrument_hooks(f"{__name__}._install", "install",
                                                       "uninstall")


def tracing_processor() -> PaidTracingProcessor:
    """The one processor ``instrument()`` registers (it records only while instrumented).

    For applications that set their own processor list with ``set_trace_processors``:
    include this object in it. Importing the SDK happens here, not at plugin load.
    """
    from paid_hooks_openai_agents import _install

    return _install.processor()
