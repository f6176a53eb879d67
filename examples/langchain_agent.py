"""Cost-track a small LangChain support agent: every model call, one business outcome.

Needs: ``pip install 'paid-hooks[langchain]' langchain-openai``. Runs offline against the
local fake provider unless OPENAI_API_KEY is set.

``paid_hooks.instrument("langchain")`` registers one always-on callback for every
LangChain run in the process (no ``callbacks=`` needed); passing
``config={"callbacks": [PaidLangChainCallback()]}`` per call works as well.
"""

from __future__ import annotations

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key

TICKET = "My invoice for March was charged twice, please refund one of the payments."


def main() -> None:
    paid_hooks.initialize_tracing()
    paid_hooks.instrument("langchain")
    fake = offline_server_if_no_key("OPENAI_API_KEY")
    # stream_usage=True: with a custom base_url ChatOpenAI would not ask for streamed usage.
    llm = (ChatOpenAI(model="gpt-4o-mini", base_url=fake.openai_url, api_key="offline",
                      stream_usage=True)
           if fake else ChatOpenAI(model="gpt-4o-mini", stream_usage=True))

    classify = (ChatPromptTemplate.from_template("Classify this ticket in one word: {ticket}")
                | llm | StrOutputParser())
    draft = (ChatPromptTemplate.from_template("Draft a short reply to a {kind} ticket: {ticket}")
             | llm | StrOutputParser())

    with paid_hooks.paid_tracing("customer-42", external_agent_id="support-agent"):
        kind = classify.invoke({"ticket": TICKET})
        print("category:", kind)
        print("reply: ", end="")
        for piece in draft.stream({"kind": kind, "ticket": TICKET}):
            print(piece, end="", flush=True)
        print()
        paid_hooks.signal("ticket_answered", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
