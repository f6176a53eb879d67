"""Cost-track a LlamaIndex query engine (plain and streamed answers) per customer.

Needs: ``pip install 'paid-hooks[llamaindex]' llama-index-llms-openai``. Runs offline
against the local fake provider unless OPENAI_API_KEY is set.

``paid_hooks.instrument("llamaindex")`` attaches the handler to LlamaIndex's root
dispatcher, so every LLM call the query engine makes is recorded; ``PaidLlamaIndexOpenAI``
is the stock ``OpenAI`` LLM that also asks for usage on streamed answers.
"""

from __future__ import annotations

from llama_index.core import Document, SummaryIndex

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_llamaindex import PaidLlamaIndexOpenAI

POLICY = (
    "Refunds are accepted within 30 days of delivery. Items must be unused and in their "
    "original packaging. Shipping costs are refunded only for damaged goods."
)


def main() -> None:
    paid_hooks.initialize_tracing()
    paid_hooks.instrument("llamaindex")
    fake = offline_server_if_no_key("OPENAI_API_KEY")
    offline = {"api_base": fake.openai_url, "api_key": "offline"} if fake else {}
    llm = PaidLlamaIndexOpenAI(model="gpt-4o-mini", **offline)

    index = SummaryIndex.from_documents([Document(text=POLICY)])  # no embeddings needed

    with paid_hooks.paid_tracing("customer-42", external_agent_id="support-agent"):
        answer = index.as_query_engine(llm=llm).query("How long is the refund window?")
        print("answer:", answer)
        streamed = index.as_query_engine(llm=llm, streaming=True).query(
            "Are shipping costs refunded?")
        print("streamed:", "".join(streamed.response_gen))
        paid_hooks.signal("refund_question_answered", enable_cost_tracing=True)

    paid_hooks.flush()
    paid_hooks.uninstrument("llamaindex")


if __name__ == "__main__":
    main()
