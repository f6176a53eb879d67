"""The basic pattern with the decorator: several AI calls, ONE cost-tracing signal.

Needs: ``pip install 'paid-hooks[openai]'``. Runs offline against the local fake provider
unless OPENAI_API_KEY is set.
"""

from __future__ import annotations

from openai import OpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_openai import PaidOpenAI

paid_hooks.initialize_tracing()
fake = offline_server_if_no_key("OPENAI_API_KEY")
client = PaidOpenAI(OpenAI(base_url=fake.openai_url, api_key="offline") if fake else OpenAI())


@paid_tracing("customer-acme", external_agent_id="doc-processor")
def process_document(text: str) -> str:
    """One business outcome: a processed document. Three AI calls, one signal."""
    summary = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Summarise: {text}"}])
    keywords = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"Keywords of: {text}"}])
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Check this summary for errors: "
                                   + (summary.choices[0].message.content or "")}])
    signal("document_processed", enable_cost_tracing=True, data={"pages": 3})
    return keywords.choices[0].message.content or ""


if __name__ == "__main__":
    print(process_document("Quarterly logistics report: shipments rose 12% in Q3 ..."))
    paid_hooks.flush()
    print("see the cost of the outcome with: paid-hooks signals")
