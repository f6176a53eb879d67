"""Cost-track AWS Bedrock Converse calls with the ``PaidBedrock`` wrapper.

Needs: ``pip install 'paid-hooks[bedrock]'``. Runs offline against the local fake provider
unless AWS_ACCESS_KEY_ID is set (then boto3's usual credential chain and AWS_REGION apply).
"""

from __future__ import annotations

import os

import boto3

import paid_hooks
from paid_hooks.testing import offline_server_if_no_key
from paid_hooks_bedrock import PaidBedrock

# A cross-region inference profile: priced as Claude Haiku 4.5 at the regional Bedrock rate.
MODEL_ID = "us.anthropic.claude-haiku-4-5-20251001-v1:0"


def make_client() -> PaidBedrock:
    fake = offline_server_if_no_key("AWS_ACCESS_KEY_ID")
    if fake is None:
        return PaidBedrock(boto3.client("bedrock-runtime",
                                        region_name=os.environ.get("AWS_REGION", "us-east-1")))
    return PaidBedrock(boto3.client(
        "bedrock-runtime", endpoint_url=fake.url + "/bedrock", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing"))


def main() -> None:
    paid_hooks.initialize_tracing()
    client = make_client()
    messages = [{"role": "user", "content": [{"text": "Summarise this ticket in one line."}]}]

    with paid_hooks.paid_tracing("customer-42", external_agent_id="support-agent"):
        reply = client.converse(modelId=MODEL_ID, messages=messages,
                                inferenceConfig={"maxTokens": 100})
        print("model said:", reply["output"]["message"]["content"][0]["text"])

        # Streaming: the usage arrives in the final ``metadata`` event.
        stream = client.converse_stream(modelId=MODEL_ID, messages=messages,
                                        inferenceConfig={"maxTokens": 100})["stream"]
        text = "".join(event["contentBlockDelta"]["delta"].get("text", "")
                       for event in stream if "contentBlockDelta" in event)
        print("streamed:", text)
        paid_hooks.signal("ticket_summarised", enable_cost_tracing=True)

    paid_hooks.flush()


if __name__ == "__main__":
    main()
