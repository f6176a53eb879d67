"""Cost-track OpenAI chat calls with the ``PaidOpenAI`` wrapper.

Needs: ``pip install 'paid-hooks[openai]'``. Runs offline against the local fake provider
unless OPENAI_API_KEY is set.
"""

from __future__ import annotations

from openai import OpenAI

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_openai import PaidOpenAI


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("OPENAI_API_KEY")
    client = PaidOpenAI(OpenAI(base_url=fake.openai_url, api_key="offline") if fake else OpenAI())

    with paid_hooks.paid_tracing("customer-42", external_agent_id="support-agent"):
        reply = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Summarise this ticket in one line."}],
        )
        print("model said:", reply.choices[0].message.content)
        paid_hooks.signal("ticket_summarised", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
