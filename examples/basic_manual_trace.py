"""The basic pattern with a manual trace (``with paid_tracing(...)``), sync and async.

Needs: ``pip install 'paid-hooks[openai]'``. Runs offline against the local fake provider
unless OPENAI_API_KEY is set.
"""

from __future__ import annotations

import asyncio

from openai import AsyncOpenAI, OpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI


def answer_email(client: PaidOpenAI, customer: str, email: str) -> None:
    with paid_tracing(customer, external_agent_id="support-agent"):
        draft = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Answer: {email}"}])
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Polish: {draft.choices[0].message.content}"}])
        signal("email_answered", enable_cost_tracing=True)


async def answer_email_async(client: PaidAsyncOpenAI, customer: str, email: str) -> None:
    async with paid_tracing(customer, external_agent_id="support-agent"):
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": f"Answer: {email}"}])
        signal("email_answered", enable_cost_tracing=True)


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("OPENAI_API_KEY")
    if fake:
        sync_client = PaidOpenAI(OpenAI(base_url=fake.openai_url, api_key="offline"))
        async_client = PaidAsyncOpenAI(AsyncOpenAI(base_url=fake.openai_url, api_key="offline"))
    else:
        sync_client, async_client = PaidOpenAI(OpenAI()), PaidAsyncOpenAI(AsyncOpenAI())
    answer_email(sync_client, "customer-acme", "Where is my order #1234?")

    async def both() -> None:
        await asyncio.gather(
            answer_email_async(async_client, "customer-globex", "Can I change my plan?"),
            answer_email_async(async_client, "customer-initech", "Do you ship to Canada?"),
        )

    asyncio.run(both())
    paid_hooks.flush()
    print("three outcomes recorded; see them with: paid-hooks signals")


if __name__ == "__main__":
    main()
