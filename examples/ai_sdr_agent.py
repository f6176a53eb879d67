"""An AI SDR agent that answers incoming email replies, with the cost of every outcome.

Needs: ``pip install 'paid-hooks[openai,anthropic]'``.

For each reply it classifies the intent with an OpenAI model, drafts an answer with an
Anthropic model (unless the lead declined), and emits exactly ONE cost-tracing signal for
the business outcome reached: ``meeting_booked``, ``email_sent`` or ``lead_disqualified``
(plus a plain ``reply_classified`` signal). Every AI call of a reply is attributed to
that reply's outcome, so the ledger knows what each booked meeting cost.

Runs offline against the local fake provider unless OPENAI_API_KEY and ANTHROPIC_API_KEY
are set. Run it with ``python examples/ai_sdr_agent.py`` and then ``paid-hooks signals``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anthropic import Anthropic
from openai import OpenAI

import paid_hooks
from paid_hooks import paid_tracing, signal
from paid_hooks.testing import FakeReply, offline_server_if_no_key
from paid_hooks_anthropic import PaidAnthropic
from paid_hooks_openai import PaidOpenAI

CLASSIFY_MODEL = "gpt-4o-mini"
DRAFT_MODEL = "claude-haiku-4-5"
AGENT_ID = "ai-sdr"
REPLIES = Path(__file__).parent / "data" / "sdr_replies.jsonl"

CLASSIFY_PROMPT = """You are the triage step of an outbound sales team's inbox.
Read the prospect's reply to our cold email and classify their intent as exactly one word:
- interested: they want a call, a meeting or a demo, or propose a time;
- question: they ask about the product, pricing, security, onboarding or integrations
  before committing to anything;
- decline: they are not interested, ask to be removed, left the company, or have no budget.
Answer with the single word only. Do not explain. When a reply both asks a question and
proposes a meeting, answer interested. When in doubt between question and decline, answer
question: a human will review declines before the lead is closed. Our product is Northwind,
a workflow automation platform for operations teams in logistics, healthcare and retail,
sold per seat with monthly and annual plans, SOC 2 type II certified, hosted in the EU and
the US, with integrations for Salesforce, HubSpot, Slack, Zendesk and a public REST API."""

DRAFT_PROMPT = """You write short, warm, specific email answers for Northwind's sales team.
Northwind is a workflow automation platform for operations teams (logistics, healthcare,
retail). Plans are per seat, monthly or annual; there is a 14-day free trial; onboarding
takes two weeks with live training; data is hosted in the EU or the US; SOC 2 type II;
integrations: Salesforce, HubSpot, Slack, Zendesk, REST API. Rules: answer every question
the prospect asked, in under 120 words; when they want to meet, confirm a concrete slot
from the times they proposed and say a calendar invite follows; never invent prices or
features not listed here; sign as "Sam, Northwind". Output only the email body."""


@dataclass(frozen=True)
class IncomingReply:
    reply_id: str
    customer_id: str
    company: str
    sender: str
    subject: str
    body: str


def load_replies(path: Path = REPLIES) -> list[IncomingReply]:
    replies = []
    for line in path.read_text().splitlines():
        raw = json.loads(line)
        replies.append(IncomingReply(raw["reply_id"], raw["customer_id"], raw["company"],
                                     raw["from"], raw["subject"], raw["body"]))
    return replies


OUTCOMES = {"interested": "meeting_booked", "question": "email_sent",
            "decline": "lead_disqualified"}


class SdrAgent:
    """Handles one reply per trace: classify, draft, one cost-tracing outcome signal."""

    def __init__(self, openai_client: Any, anthropic_client: Any) -> None:
        self.openai = openai_client
        self.anthropic = anthropic_client

    def classify(self, reply: IncomingReply) -> str:
        response = self.openai.chat.completions.create(
            model=CLASSIFY_MODEL,
            messages=[
                {"role": "system", "content": CLASSIFY_PROMPT},
                {"role": "user", "content": f"Subject: {reply.subject}\n\n{reply.body}"},
            ],
            max_tokens=5,
        )
        word = (response.choices[0].message.content or "").strip().lower()
        return word if word in OUTCOMES else "question"

    def draft(self, reply: IncomingReply, intent: str) -> str:
        message = self.anthropic.messages.create(
            model=DRAFT_MODEL,
            max_tokens=400,
            system=DRAFT_PROMPT,
            messages=[{"role": "user", "content": (
                f"Prospect intent: {intent}\nFrom: {reply.sender} ({reply.company})\n"
                f"Subject: {reply.subject}\n\n{reply.body}")}],
        )
        return "".join(block.text for block in message.content if block.type == "text")

    def handle(self, reply: IncomingReply) -> str:
        """Process one reply inside its own trace; returns the outcome reached."""
        with paid_tracing(reply.customer_id, external_agent_id=AGENT_ID,
                          metadata={"reply_id": reply.reply_id}):
            intent = self.classify(reply)
            signal("reply_classified", data={"reply_id": reply.reply_id, "intent": intent})
            if intent != "decline":
                self.draft(reply, intent)
            outcome = OUTCOMES[intent]
            signal(outcome, enable_cost_tracing=True, data={"reply_id": reply.reply_id})
        return outcome


# -- offline mode: the fake provider answers like the real models would ---------------------

_INTERESTED = re.compile(r"\b(book|meet|meeting|call|demo|schedule|let's talk|calendar)\b", re.I)
_DECLINE = re.compile(r"\b(not interested|remove|unsubscribe|stop emailing|no thanks|"
                      r"no thank you|not a fit|not relevant|don't follow up|not a priority|"
                      r"left the company|budget freeze)\b", re.I)


def offline_answer(provider: str, body: dict[str, Any]) -> FakeReply:
    """Realistic fake answers: intent from keywords, a draft of realistic length."""
    if provider == "openai":
        email = body["messages"][-1]["content"]
        if _DECLINE.search(email):
            return FakeReply(text="decline")
        return FakeReply(text="interested" if _INTERESTED.search(email) else "question")
    intent = body["messages"][-1]["content"].split("\n", 1)[0].removeprefix("Prospect intent: ")
    if intent == "interested":
        text = ("Hi, thanks for the quick reply. Tuesday at 2pm works well on our side; a "
                "calendar invite with a video link follows in a minute. In the call we will "
                "walk through how operations teams use Northwind to automate hand-offs, and "
                "we can look at your current workflow together. If anyone else should join, "
                "just forward the invite. Looking forward to it. Sam, Northwind")
    else:
        text = ("Hi, thanks for your question. Northwind integrates with Salesforce, HubSpot, "
                "Slack and Zendesk, and has a public REST API for exports to your BI tool. "
                "Plans are per seat, monthly or annual, and there is a 14-day free trial so "
                "your team can try it first. Onboarding takes about two weeks with live "
                "training. Data is hosted in the EU or the US and we are SOC 2 type II "
                "certified. Happy to send the security pack. Sam, Northwind")
    return FakeReply(text=text)


def build_agent() -> SdrAgent:
    """The agent on the real services when both keys are set, else on the fake provider."""
    fake = offline_server_if_no_key("OPENAI_API_KEY", "ANTHROPIC_API_KEY")
    if fake is None:
        return SdrAgent(PaidOpenAI(OpenAI()), PaidAnthropic(Anthropic()))
    fake.responder = offline_answer
    return SdrAgent(
        PaidOpenAI(OpenAI(base_url=fake.openai_url, api_key="offline")),
        PaidAnthropic(Anthropic(base_url=fake.anthropic_url, api_key="offline")),
    )


def main() -> None:
    paid_hooks.initialize_tracing()
    agent = build_agent()
    for reply in load_replies():
        outcome = agent.handle(reply)
        print(f"{reply.reply_id} {reply.company:<18} -> {outcome}")
    paid_hooks.flush()
    print(f"\nledger: {os.environ.get('PAID_HOOKS_LEDGER', 'default')}; "
          "see the costs with: paid-hooks signals")


if __name__ == "__main__":
    main()
