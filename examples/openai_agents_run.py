"""Cost-track an OpenAI Agents SDK run with the run hook (``PaidOpenAIAgentsHook``).

Needs: ``pip install 'paid-hooks[openai-agents]'``. Runs offline against the local fake
provider unless OPENAI_API_KEY is set (then it calls OpenAI with the SDK's defaults).
"""

from __future__ import annotations

from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner
from openai import AsyncOpenAI

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_openai_agents import PaidOpenAIAgentsHook


def build_agent(client: AsyncOpenAI | None) -> Agent[None]:
    """A support agent on gpt-4o-mini; offline it talks Chat Completions to the fake."""
    model = (OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client)
             if client else "gpt-4o-mini")
    return Agent(name="support", instructions="Answer in one sentence.", model=model)


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("OPENAI_API_KEY")
    client = AsyncOpenAI(base_url=fake.openai_url, api_key="offline") if fake else None
    # Offline, do not send fake traces to OpenAI's trace backend (a choice of this script:
    # the plugin never changes the SDK's tracing settings).
    run_config = RunConfig(tracing_disabled=fake is not None)

    with paid_hooks.paid_tracing("customer-42", external_agent_id="support-agent"):
        result = Runner.run_sync(build_agent(client), "Where is my order #1234?",
                                 hooks=PaidOpenAIAgentsHook(), run_config=run_config)
        print("agent said:", result.final_output)
        paid_hooks.signal("question_answered", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
