"""Cost-track Anthropic Messages calls (plain and streamed) with the ``PaidAnthropic`` wrapper.

Needs: ``pip install 'paid-hooks[anthropic]'``. Runs offline against the local fake provider
unless ANTHROPIC_API_KEY is set.
"""

from __future__ import annotations

from anthropic import Anthropic

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_anthropic import PaidAnthropic

MODEL = "claude-sonnet-4-6"


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("ANTHROPIC_API_KEY")
    client = PaidAnthropic(
        Anthropic(base_url=fake.anthropic_url, api_key="offline") if fake else Anthropic())

    with paid_hooks.paid_tracing("customer-42", external_agent_id="support-agent"):
        reply = client.messages.create(
            model=MODEL,
            max_tokens=200,
            messages=[{"role": "user", "content": "Summarise this ticket in one line."}],
        )
        print("model said:", reply.content[0].text)

        # Streamed: recorded when the stream ends, from message_start + message_delta usage.
        with client.messages.stream(
            model=MODEL,
            max_tokens=200,
            messages=[{"role": "user", "content": "Draft a one-line reply to the customer."}],
        ) as stream:
            print("draft:", "".join(stream.text_stream))

        paid_hooks.signal("ticket_answered", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
