"""Cost-track an OpenAI-compatible gateway (OpenRouter, vLLM, LiteLLM...) at the HTTP layer.

Needs: ``pip install 'paid-hooks[httpx,openai]'``. The ``openai`` SDK talks to the gateway
through an ``httpx.Client`` hooked with ``paid_hooks_httpx.instrument_client``: every chat
completion (JSON or streamed) is recorded from the HTTP response itself, whatever SDK or
framework sends it.

Runs offline against the local fake provider (standing in for OpenRouter) unless
OPENROUTER_API_KEY is set; then it calls https://openrouter.ai/api/v1 (override with
GATEWAY_BASE_URL) and the provider is inferred from the host.
"""

from __future__ import annotations

import os

import httpx
from openai import OpenAI

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_httpx import instrument_client

MODEL = "openai/gpt-4o-mini"


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("OPENROUTER_API_KEY")
    if fake is not None:
        base_url, api_key = f"{fake.url}/api/v1", "offline"
        provider: str | None = "openrouter"  # a gateway on localhost: name its provider
    else:
        base_url = os.environ.get("GATEWAY_BASE_URL", "https://openrouter.ai/api/v1")
        api_key, provider = os.environ["OPENROUTER_API_KEY"], None  # inferred from the host

    http_client = instrument_client(httpx.Client(), provider=provider)
    client = OpenAI(base_url=base_url, api_key=api_key, http_client=http_client)

    with paid_hooks.paid_tracing("customer-42", external_agent_id="lead-qualifier"):
        reply = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Is ACME Corp a good lead? One line."}],
        )
        print("model said:", reply.choices[0].message.content)
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Draft a one-line follow-up."}],
            stream=True,
            stream_options={"include_usage": True},  # otherwise the stream has no usage
        )
        print("streamed:", "".join(c.choices[0].delta.content or "" for c in stream
                                   if c.choices))
        paid_hooks.signal("lead_qualified", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
