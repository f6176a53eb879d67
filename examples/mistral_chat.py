"""Cost-track Mistral chat and OCR calls with the ``PaidMistral`` wrapper.

Needs: ``pip install 'paid-hooks[mistral]'``. Runs offline against the local fake provider
unless MISTRAL_API_KEY is set.
"""

from __future__ import annotations

import os

from mistralai.client import Mistral

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_mistral import PaidMistral


def main() -> None:
    paid_hooks.initialize_tracing()
    fake = offline_server_if_no_key("MISTRAL_API_KEY")
    if fake is not None:  # the fake provider serves Mistral under /mistral
        client = PaidMistral(Mistral(api_key="offline", server_url=fake.url + "/mistral"))
    else:
        client = PaidMistral(Mistral(api_key=os.environ["MISTRAL_API_KEY"]))

    with paid_hooks.paid_tracing("customer-42", external_agent_id="invoice-agent"):
        page = client.ocr.process(
            model="mistral-ocr-latest",
            document={"type": "document_url",
                      "document_url": "https://arxiv.org/pdf/2201.04234"},
        )
        print("OCR pages:", len(page.pages))
        with client.chat.stream(
            model="mistral-small-latest",
            messages=[{"role": "user", "content": "Summarise this invoice in one line."}],
        ) as stream:
            for event in stream:
                print(event.data.choices[0].delta.content or "", end="")
        print()
        paid_hooks.signal("invoice_processed", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
