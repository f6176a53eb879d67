"""Cost-track streamed OpenAI calls: chat chunks and Responses API events.

Needs: ``pip install 'paid-hooks[openai]'``. Runs offline against the local fake provider
unless OPENAI_API_KEY is set.

The stream is recorded when it ends. The plugin asks OpenAI for the stream's usage
(``stream_options.include_usage``) and hides the extra usage-only chunk, so the loop
below sees the same chunks it would see without paid-hooks.
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
        print("chat: ", end="")
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Draft a one-line reply to this ticket."}],
            stream=True,
        )
        for chunk in stream:
            if chunk.choices:
                print(chunk.choices[0].delta.content or "", end="", flush=True)
        print()

        print("responses: ", end="")
        with client.responses.stream(model="gpt-4o-mini",
                                     input="Suggest a subject line for the reply.") as events:
            for event in events:
                if event.type == "response.output_text.delta":
                    print(event.delta, end="", flush=True)
        print()
        paid_hooks.signal("ticket_answered", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
