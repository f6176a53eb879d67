"""A long-running asyncio event loop: a queue of events, bounded workers, one trace each.

Needs: ``pip install 'paid-hooks[openai]'``. Runs offline against the local fake provider
unless OPENAI_API_KEY is set.

Each event is handled in its own trace by one of a fixed number of workers; on shutdown
the workers drain the queue, tracing is flushed (bounded), and a cost report is printed.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from openai import AsyncOpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_openai import PaidAsyncOpenAI

WORKERS = 4
EVENTS = 40


async def handle(client: PaidAsyncOpenAI, event: dict[str, str]) -> None:
    async with paid_tracing(event["customer"], external_agent_id="ticket-router"):
        routing = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"Route this ticket: {event['text']}"}])
        if "refund" in event["text"]:
            await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Draft a refund reply."}])
            signal("refund_drafted", enable_cost_tracing=True, data={"id": event["id"]})
        else:
            queue_name = (routing.choices[0].message.content or "")[:20]
            signal("ticket_routed", enable_cost_tracing=True,
                   data={"id": event["id"], "queue": queue_name})


async def worker(client: PaidAsyncOpenAI, queue: asyncio.Queue[dict[str, str] | None]) -> None:
    while (event := await queue.get()) is not None:
        try:
            await handle(client, event)
        except Exception as exc:  # one bad event never stops the loop
            print(f"event {event['id']} failed: {exc!r}")
        finally:
            queue.task_done()
    queue.task_done()


class RunCosts:
    """A cost observer plugin: totals what this run spent, per customer, as calls finish."""

    def __init__(self) -> None:
        self.by_customer: dict[str, Decimal] = {}
        self.calls = 0

    @paid_hooks.hookimpl
    def call_recorded(self, record: paid_hooks.PricedCall) -> None:
        self.calls += 1
        if record.price is not None and record.external_customer_id:
            customer = record.external_customer_id
            self.by_customer[customer] = self.by_customer.get(customer, Decimal(0)) + (
                record.price.amount)


async def main() -> None:
    paid_hooks.initialize_tracing()
    costs = RunCosts()
    paid_hooks.register_plugin(costs, name="run-costs")
    fake = offline_server_if_no_key("OPENAI_API_KEY")
    client = PaidAsyncOpenAI(AsyncOpenAI(base_url=fake.openai_url, api_key="offline")
                             if fake else AsyncOpenAI())
    queue: asyncio.Queue[dict[str, str] | None] = asyncio.Queue(maxsize=WORKERS * 2)
    workers = [asyncio.create_task(worker(client, queue)) for _ in range(WORKERS)]
    rng = random.Random(3)
    for n in range(EVENTS):
        text = rng.choice(["I want a refund for order 77", "How do I reset my password?",
                           "The app crashes on login", "Please refund my last invoice"])
        await queue.put({"id": f"evt-{n}", "customer": f"customer-{n % 6}", "text": text})
    for _ in workers:
        await queue.put(None)  # clean shutdown: each worker exits after draining
    await asyncio.gather(*workers)
    paid_hooks.flush(timeout=5)

    print(f"processed {EVENTS} events with {WORKERS} workers, {costs.calls} AI calls")
    for customer, amount in sorted(costs.by_customer.items()):
        print(f"  {customer:<12} ${amount:.6f}")
    print(f"  {'total':<12} ${sum(costs.by_customer.values(), Decimal(0)):.6f}")
    print("per outcome, across runs: paid-hooks costs --by signal")


if __name__ == "__main__":
    asyncio.run(main())
