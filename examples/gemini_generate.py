"""Cost-track Gemini calls (sync, streamed and async) with the ``PaidGemini`` wrapper.

Needs: ``pip install 'paid-hooks[gemini]'``. Runs offline against the local fake provider
unless GEMINI_API_KEY (or GOOGLE_API_KEY) is set.
"""

from __future__ import annotations

import asyncio

from google import genai
from google.genai import types

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_gemini import PaidGemini

MODEL = "gemini-2.5-flash"


async def summarise(client: PaidGemini, transcript: str) -> str:
    async with client.aio as aio:  # closes the async (aiohttp) session afterwards
        response = await aio.models.generate_content(
            model=MODEL, contents=f"Summarise this call in one line: {transcript}")
    return response.text or ""


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("GEMINI_API_KEY", "GOOGLE_API_KEY")
    options = types.HttpOptions(base_url=fake.url) if fake else None
    client = PaidGemini(genai.Client(api_key="offline" if fake else None,
                                     http_options=options))

    with paid_hooks.paid_tracing("customer-42", external_agent_id="sales-call-agent"):
        transcript = "".join(
            chunk.text or ""
            for chunk in client.models.generate_content_stream(
                model=MODEL, contents="Write a two-line sales call transcript."))
        print("transcript:", transcript)
        print("summary:", asyncio.run(summarise(client, transcript)))
        paid_hooks.signal("call_summarised", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
