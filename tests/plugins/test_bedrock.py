"""PaidBedrock wrapper: the real boto3 client against the fake Bedrock Runtime server.

Every test asserts exact token counts and the exact cost genai-prices gives for them
(provider ``aws``), computed independently from the canonical usage the fake served.
boto3 is synchronous only: there is no async path to test.
"""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from typing import Any

import boto3
import botocore.exceptions
import genai_prices
import pytest
from botocore.eventstream import EventStream
from botocore.response import StreamingBody

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage
from paid_hooks_bedrock import PaidBedrock, normalize_model_id

SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
SONNET_45_US = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_45_GLOBAL = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
LLAMA = "meta.llama3-1-8b-instruct-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Summarise this ticket in one line."}]}]
ANTHROPIC_BODY = json.dumps({
    "anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
    "messages": [{"role": "user", "content": "Summarise this ticket in one line."}],
}).encode()


def raw_client(fake: FakeProviderServer, **credentials: Any) -> Any:
    credentials.setdefault("aws_access_key_id", "testing")
    credentials.setdefault("aws_secret_access_key", "testing")
    return boto3.client("bedrock-runtime", endpoint_url=fake.url + "/bedrock",
                        region_name="us-east-1", **credentials)


def paid_client(fake: FakeProviderServer, **credentials: Any) -> PaidBedrock:
    return PaidBedrock(raw_client(fake, **credentials))


def price(model: str, **usage: int) -> Decimal:
    result = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="aws")
    return Decimal(result.total_price)


def only_row(paid_ledger: Any) -> dict[str, Any]:
    rows = paid_ledger.calls()
    assert len(rows) == 1, rows
    return rows[0]


# -- Converse ---------------------------------------------------------------------------------


def test_converse_exact_tokens_and_cost(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(1200, 300)))
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = client.converse(modelId=SONNET, messages=MESSAGES)
        paid_hooks.signal("ticket_summarised", enable_cost_tracing=True)

    assert response["output"]["message"]["content"][0]["text"].startswith("This is a reply")
    row = only_row(paid_ledger)
    assert row["provider"] == "aws.bedrock"
    assert row["operation"] == "chat"
    assert row["captured_by"] == "bedrock"
    assert row["model"] == SONNET
    assert row["streaming"] == 0
    assert (row["input_tokens"], row["output_tokens"]) == (1200, 300)
    assert row["cache_read_tokens"] is None and row["cache_write_tokens"] is None
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == price(SONNET, input_tokens=1200, output_tokens=300)
    assert row["response_id"] == response["ResponseMetadata"]["RequestId"]
    assert row["response_id"] == fake_provider.exchanges[-1].response_id
    assert row["external_customer_id"] == "acme"
    [signal] = paid_ledger.signals()
    assert signal["ai_calls"] == 1
    assert Decimal(signal["cost_usd"]) == Decimal(row["cost_usd"])


def test_converse_cache_tokens_are_added_to_input(paid_ledger, fake_provider):
    # Converse reports inputTokens WITHOUT the cache: the fake sends 1000 - 300 - 400 = 800.
    usage = FakeUsage(2000, 150, cache_read_tokens=300, cache_write_tokens=400,
                      cache_write_1h_tokens=100)
    fake_provider.queue(FakeReply(usage=usage))
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = client.converse(modelId=SONNET_45_US, messages=MESSAGES)

    assert response["usage"]["inputTokens"] == 1300  # the native, cache-exclusive count
    row = only_row(paid_ledger)
    assert row["input_tokens"] == 2000
    assert row["output_tokens"] == 150
    assert row["cache_read_tokens"] == 300
    assert row["cache_write_tokens"] == 400
    assert json.loads(row["usage_json"]) == {
        "input_tokens": 2000, "output_tokens": 150, "cache_read_tokens": 300,
        "cache_write_tokens": 400, "cache_write_5m_tokens": 300, "cache_write_1h_tokens": 100,
    }
    expected = price(SONNET_45_US, input_tokens=2000, output_tokens=150, cache_read_tokens=300,
                     cache_write_tokens=400, cache_write_5m_tokens=300,
                     cache_write_1h_tokens=100)
    assert Decimal(row["cost_usd"]) == expected
    # The 1-hour writes are dearer than 5-minute ones: the split changes the price.
    assert expected != price(SONNET_45_US, input_tokens=2000, output_tokens=150,
                             cache_read_tokens=300, cache_write_tokens=400)


def test_converse_service_tier_is_recorded(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10), service_tier="flex"))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        paid_client(fake_provider).converse(modelId=SONNET, messages=MESSAGES)
    assert only_row(paid_ledger)["service_tier"] == "flex"


def test_converse_without_usage_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 10), omit_usage=True))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        paid_client(fake_provider).converse(modelId=SONNET, messages=MESSAGES)
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "not_reported"
    assert row["cost_usd"] is None


# -- ConverseStream ---------------------------------------------------------------------------


def test_converse_stream_exact_tokens_and_cost(paid_ledger, fake_provider):
    usage = FakeUsage(1500, 200, cache_read_tokens=1000)
    fake_provider.queue(FakeReply(usage=usage, service_tier="priority"))
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = client.converse_stream(modelId=SONNET, messages=MESSAGES)
        events = list(response["stream"])

    text = "".join(e["contentBlockDelta"]["delta"]["text"] for e in events
                   if "contentBlockDelta" in e)
    assert text == "This is a reply from the local fake provider."
    assert events[-1]["metadata"]["usage"]["inputTokens"] == 500
    row = only_row(paid_ledger)
    assert row["streaming"] == 1
    assert (row["input_tokens"], row["output_tokens"]) == (1500, 200)
    assert row["cache_read_tokens"] == 1000
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == price(SONNET, input_tokens=1500, output_tokens=200,
                                             cache_read_tokens=1000)
    assert row["response_id"] == response["ResponseMetadata"]["RequestId"]
    assert row["service_tier"] == "priority"


def test_converse_stream_is_passed_through_untouched(paid_ledger, fake_provider):
    reply = FakeReply(usage=FakeUsage(40, 12), text="A longer reply, split over many deltas.")
    fake_provider.queue(reply, reply)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        plain = list(raw_client(fake_provider).converse_stream(
            modelId=SONNET, messages=MESSAGES)["stream"])
        wrapped_stream = paid_client(fake_provider).converse_stream(
            modelId=SONNET, messages=MESSAGES)["stream"]
        assert isinstance(wrapped_stream, EventStream)
        wrapped = list(wrapped_stream)
    assert wrapped == plain
    assert len(wrapped) == 8  # start, 4 deltas, block stop, message stop, metadata


def test_converse_stream_abandoned_and_closed_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = paid_client(fake_provider).converse_stream(
            modelId=SONNET, messages=MESSAGES)["stream"]
        for index, _event in enumerate(stream):
            if index == 1:
                break
        stream.close()
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"
    assert row["input_tokens"] is None and row["cost_usd"] is None
    assert row["response_id"] == fake_provider.exchanges[-1].response_id


def test_converse_stream_abandoned_and_dropped_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = paid_client(fake_provider).converse_stream(modelId=SONNET, messages=MESSAGES)
        for _event in response["stream"]:
            break
        del response, _event
        gc.collect()
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


def test_converse_stream_resumed_after_break_is_priced(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = paid_client(fake_provider).converse_stream(
            modelId=SONNET, messages=MESSAGES)["stream"]
        first = []
        for event in stream:
            first.append(event)
            break
        rest = list(stream)  # an EventStream continues where the caller left it
    assert "messageStart" in first[0] and "metadata" in rest[-1]
    row = only_row(paid_ledger)
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == price(SONNET, input_tokens=100, output_tokens=40)


def test_converse_stream_recorded_as_soon_as_metadata_arrives(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        stream = paid_client(fake_provider).converse_stream(
            modelId=SONNET, messages=MESSAGES)["stream"]
        for event in stream:
            if "metadata" in event:
                break  # the caller never exhausts nor closes the stream
        row = only_row(paid_ledger)
    assert row["cost_status"] == "priced"
    assert (row["input_tokens"], row["output_tokens"]) == (100, 40)


def test_converse_stream_cut_by_the_server_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40), cut_stream_after=3))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        events = list(paid_client(fake_provider).converse_stream(
            modelId=SONNET, messages=MESSAGES)["stream"])
    assert len(events) == 3
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


@pytest.mark.parametrize(("method", "key", "after"), [
    ("converse_stream", "stream", 3),
    ("converse_stream", "stream", 8),  # after metadata: the usage already arrived
    ("invoke_model_with_response_stream", "body", 2),
])
def test_stream_exception_reaches_the_caller(paid_ledger, fake_provider, method, key, after):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40), error_message="model failed",
                                  extra={"stream_exception_after": after}))
    kwargs: dict[str, Any] = ({"messages": MESSAGES} if method == "converse_stream"
                              else {"body": ANTHROPIC_BODY})
    seen = []
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(botocore.exceptions.EventStreamError) as caught:
        for event in getattr(paid_client(fake_provider), method)(modelId=SONNET, **kwargs)[key]:
            seen.append(event)
    assert len(seen) == after
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    row = only_row(paid_ledger)
    if after == 8:
        assert row["cost_status"] == "priced"
        assert (row["input_tokens"], row["output_tokens"]) == (100, 40)
    else:
        assert row["cost_status"] == "usage_unknown"
        assert row["cost_reason"] == "stream_error"


# -- InvokeModel ------------------------------------------------------------------------------


def test_invoke_model_anthropic_body_exact_tokens_and_cost(paid_ledger, fake_provider):
    usage = FakeUsage(2000, 100, cache_read_tokens=1200, cache_write_tokens=500,
                      cache_write_1h_tokens=200)
    fake_provider.queue(FakeReply(usage=usage))
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = client.invoke_model(modelId=SONNET_45_US, body=ANTHROPIC_BODY)
        # The caller's body is intact, unread, and a real StreamingBody.
        assert isinstance(response["body"], StreamingBody)
        body = json.loads(response["body"].read())
        assert response["body"].read() == b""

    assert body["content"][0]["text"] == "This is a reply from the local fake provider."
    assert body["usage"]["input_tokens"] == 300  # Anthropic's native, cache-exclusive count
    row = only_row(paid_ledger)
    assert row["operation"] == "chat"
    assert row["model"] == SONNET_45_US  # not the body's bare "claude-..." name
    assert (row["input_tokens"], row["output_tokens"]) == (2000, 100)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (1200, 500)
    assert Decimal(row["cost_usd"]) == price(
        SONNET_45_US, input_tokens=2000, output_tokens=100, cache_read_tokens=1200,
        cache_write_tokens=500, cache_write_5m_tokens=300, cache_write_1h_tokens=200)
    assert row["response_id"] == response["ResponseMetadata"]["RequestId"]


def test_invoke_model_body_can_be_streamed_by_the_caller(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(50, 5)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = paid_client(fake_provider).invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)
        chunks = list(response["body"].iter_chunks(chunk_size=16))
    assert json.loads(b"".join(chunks))["type"] == "message"
    assert len(chunks) > 1
    assert only_row(paid_ledger)["cost_status"] == "priced"


def test_invoke_model_other_models_use_the_token_count_headers(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(321, 45)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = paid_client(fake_provider).invoke_model(
            modelId=LLAMA, body=json.dumps({"prompt": "hello", "max_gen_len": 64}))
        assert json.loads(response["body"].read())["generation"]
    row = only_row(paid_ledger)
    assert row["operation"] == "text_completion"
    assert (row["input_tokens"], row["output_tokens"]) == (321, 45)
    assert Decimal(row["cost_usd"]) == price(LLAMA, input_tokens=321, output_tokens=45)


def test_invoke_model_without_usage_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(50, 5), omit_usage=True))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = paid_client(fake_provider).invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)
        assert "usage" not in json.loads(response["body"].read())
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"


# -- InvokeModelWithResponseStream ------------------------------------------------------------


def _chunks(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(e["chunk"]["bytes"]) for e in events]


def test_invoke_stream_anthropic_exact_tokens_and_cost(paid_ledger, fake_provider):
    usage = FakeUsage(3000, 250, cache_read_tokens=2000, cache_write_tokens=600)
    fake_provider.queue(FakeReply(usage=usage))
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = client.invoke_model_with_response_stream(modelId=SONNET_45_GLOBAL,
                                                            body=ANTHROPIC_BODY)
        assert isinstance(response["body"], EventStream)
        chunks = _chunks(list(response["body"]))

    assert chunks[0]["type"] == "message_start"
    assert chunks[-1]["amazon-bedrock-invocationMetrics"]["inputTokenCount"] == 400
    row = only_row(paid_ledger)
    assert row["streaming"] == 1
    assert row["model"] == SONNET_45_GLOBAL
    assert (row["input_tokens"], row["output_tokens"]) == (3000, 250)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (2000, 600)
    assert Decimal(row["cost_usd"]) == price(
        SONNET_45_GLOBAL, input_tokens=3000, output_tokens=250, cache_read_tokens=2000,
        cache_write_tokens=600, cache_write_5m_tokens=600, cache_write_1h_tokens=0)
    assert row["response_id"] == response["ResponseMetadata"]["RequestId"]


def test_invoke_stream_other_models_use_invocation_metrics(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(77, 12)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        response = paid_client(fake_provider).invoke_model_with_response_stream(
            modelId=LLAMA, body=json.dumps({"prompt": "hello"}))
        chunks = _chunks(list(response["body"]))
    assert "".join(c["generation"] for c in chunks).startswith("This is a reply")
    row = only_row(paid_ledger)
    assert (row["input_tokens"], row["output_tokens"]) == (77, 12)
    assert Decimal(row["cost_usd"]) == price(LLAMA, input_tokens=77, output_tokens=12)


def test_invoke_stream_abandoned_is_usage_unknown(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        body = paid_client(fake_provider).invoke_model_with_response_stream(
            modelId=SONNET, body=ANTHROPIC_BODY)["body"]
        for _event in body:
            break  # only message_start (input counts, output 1) was seen
        body.close()
    row = only_row(paid_ledger)
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


def test_invoke_stream_passed_through_untouched(paid_ledger, fake_provider):
    reply = FakeReply(usage=FakeUsage(40, 12))
    fake_provider.queue(reply, reply)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        plain = list(raw_client(fake_provider).invoke_model_with_response_stream(
            modelId=SONNET, body=ANTHROPIC_BODY)["body"])
        wrapped = list(paid_client(fake_provider).invoke_model_with_response_stream(
            modelId=SONNET, body=ANTHROPIC_BODY)["body"])
    # Identical apart from the per-request message id.
    assert [e.keys() for e in wrapped] == [e.keys() for e in plain]
    assert _chunks(wrapped)[1:] == _chunks(plain)[1:]


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "status", "code"), [
    ("converse", 400, "ValidationException"),
    ("converse_stream", 400, "ValidationException"),
    ("invoke_model", 403, "AccessDeniedException"),
    ("invoke_model_with_response_stream", 404, "ResourceNotFoundException"),
])
def test_errors_reach_the_caller_unchanged_and_cost_nothing(paid_ledger, fake_provider,
                                                             method, status, code):
    kwargs: dict[str, Any] = ({"messages": MESSAGES} if method.startswith("converse")
                              else {"body": ANTHROPIC_BODY})
    reply = FakeReply(status=status, error_message="Malformed input request")
    fake_provider.queue(reply, reply)
    plain_client = raw_client(fake_provider)
    with pytest.raises(botocore.exceptions.ClientError) as plain:
        getattr(plain_client, method)(modelId=SONNET, **kwargs)
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(botocore.exceptions.ClientError) as wrapped:
        getattr(client, method)(modelId=SONNET, **kwargs)

    assert type(wrapped.value).__name__ == code
    assert isinstance(wrapped.value, getattr(client.exceptions, code))
    assert wrapped.value.response["Error"] == plain.value.response["Error"]
    assert wrapped.value.response["Error"]["Message"] == "Malformed input request"
    assert str(wrapped.value).replace(
        wrapped.value.response["ResponseMetadata"]["RequestId"], "") == str(plain.value).replace(
        plain.value.response["ResponseMetadata"]["RequestId"], "")
    row = only_row(paid_ledger)
    assert row["call_status"] == "error"
    assert row["error_type"] == code
    assert row["cost_status"] == "no_charge"
    assert row["cost_usd"] is None and row["input_tokens"] is None
    assert row["response_id"] == wrapped.value.response["ResponseMetadata"]["RequestId"]


def test_parameter_validation_error_costs_nothing(paid_ledger, fake_provider):
    with paid_hooks.paid_tracing("acme", external_agent_id="support"), \
            pytest.raises(botocore.exceptions.ParamValidationError):
        paid_client(fake_provider).converse(messages=MESSAGES)  # modelId missing
    row = only_row(paid_ledger)
    assert row["cost_status"] == "no_charge"
    assert row["error_type"] == "ParamValidationError"
    assert fake_provider.exchanges == []


# -- model ids --------------------------------------------------------------------------------

OPAQUE_PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
PROVISIONED = "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl"

MODEL_IDS = [
    # (modelId as passed to boto3, model the call is priced as)
    (SONNET, SONNET),
    ("us.anthropic.claude-3-5-sonnet-20240620-v1:0",
     "us.anthropic.claude-3-5-sonnet-20240620-v1:0"),
    ("eu.anthropic.claude-haiku-4-5-20251001-v1:0",
     "eu.anthropic.claude-haiku-4-5-20251001-v1:0"),
    ("apac.anthropic.claude-sonnet-4-20250514-v1:0",
     "apac.anthropic.claude-sonnet-4-20250514-v1:0"),
    (SONNET_45_GLOBAL, SONNET_45_GLOBAL),
    ("arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-5-sonnet-20240620-v1:0",
     SONNET),
    ("arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + SONNET_45_US, SONNET_45_US),
    ("arn:aws:bedrock:eu-west-1:123456789012:inference-profile/" + SONNET_45_GLOBAL,
     SONNET_45_GLOBAL),
    ("amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0"),
    ("us.meta.llama3-1-8b-instruct-v1:0", "us.meta.llama3-1-8b-instruct-v1:0"),
    (OPAQUE_PROFILE, OPAQUE_PROFILE),
    (PROVISIONED, PROVISIONED),
]


@pytest.mark.parametrize(("model_id", "expected"), MODEL_IDS)
def test_model_id_normalisation(model_id, expected):
    assert normalize_model_id(model_id) == expected


@pytest.mark.parametrize("model_id", [None, "", "   ", 42])
def test_model_id_normalisation_of_nothing(model_id):
    assert normalize_model_id(model_id) is None


@pytest.mark.parametrize(("model_id", "expected"), MODEL_IDS)
def test_every_model_id_form_is_priced_as_its_model(paid_ledger, fake_provider, model_id,
                                                    expected):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        paid_client(fake_provider).converse(modelId=model_id, messages=MESSAGES)
    assert fake_provider.exchanges[-1].model == model_id  # the server saw the raw id
    row = only_row(paid_ledger)
    assert row["request_model"] == model_id
    assert row["model"] == expected
    if expected.startswith("arn:"):
        assert row["cost_status"] == "unpriced"
        assert row["cost_reason"] == "unknown_model"
    else:
        assert row["cost_status"] == "priced"
        assert Decimal(row["cost_usd"]) == price(expected, input_tokens=1000, output_tokens=100)


def test_global_profiles_keep_their_own_price():
    """Why the geographic prefix is kept: global and regional profiles differ in price."""
    usage = {"input_tokens": 1000, "output_tokens": 100}
    assert price(SONNET_45_GLOBAL, **usage) != price(SONNET_45_US, **usage)
    assert price(SONNET_45_US, **usage) == price("anthropic.claude-sonnet-4-5-20250929-v1:0",
                                                 **usage)


# -- the wrapper itself -----------------------------------------------------------------------


def test_wrapper_passes_everything_else_through(fake_provider):
    plain = raw_client(fake_provider)
    client = PaidBedrock(plain)
    assert client.meta is plain.meta
    assert client.meta.region_name == "us-east-1"
    assert client.exceptions is plain.exceptions
    assert client.can_paginate("converse") is False
    assert "converse" in dir(client)
    assert repr(client).startswith("PaidBedrock(")


def test_calls_in_one_trace_are_attributed_to_its_signal(paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(1000, 100)), FakeReply(usage=FakeUsage(20, 30)))
    client = paid_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.converse(modelId=SONNET, messages=MESSAGES)
        list(client.converse_stream(modelId=LLAMA, messages=MESSAGES)["stream"])
        paid_hooks.signal("ticket_summarised", enable_cost_tracing=True)
    [signal] = paid_ledger.signals()
    assert signal["ai_calls"] == 2
    assert (signal["input_tokens"], signal["output_tokens"]) == (1020, 130)
    assert Decimal(signal["cost_usd"]) == (price(SONNET, input_tokens=1000, output_tokens=100)
                                           + price(LLAMA, input_tokens=20, output_tokens=30))


def test_no_credentials_or_auth_headers_in_the_ledger(paid_ledger, fake_provider):
    key_id, secret, token = "AKIA-PAID-HOOKS-KEY-ID", "wJalrXUtnFEMI/K7MDENG/SECRETKEY01", \
        "FwoGZXIvYXdzPAIDHOOKSSESSIONTOKEN01"
    client = paid_client(fake_provider, aws_access_key_id=key_id, aws_secret_access_key=secret,
                         aws_session_token=token)
    fake_provider.queue(FakeReply(usage=FakeUsage(10, 5)), FakeReply(usage=FakeUsage(10, 5)),
                        FakeReply(status=400))
    with paid_hooks.paid_tracing("acme", external_agent_id="support"):
        client.converse(modelId=SONNET, messages=MESSAGES)
        list(client.converse_stream(modelId=SONNET, messages=MESSAGES)["stream"])
        with pytest.raises(botocore.exceptions.ClientError):
            client.invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)
        paid_hooks.signal("done", enable_cost_tracing=True)

    authorization = fake_provider.exchanges[0].request_headers["authorization"]
    assert key_id in authorization  # SigV4 names the key id in the header
    secrets = {key_id, secret, token, authorization,
               authorization.rsplit("Signature=", 1)[-1],
               fake_provider.exchanges[0].request_headers["x-amz-security-token"]}
    rows = paid_ledger.calls()
    assert len(rows) == 3
    dump = json.dumps(rows, default=str) + json.dumps(paid_ledger.signals(), default=str)
    for value in secrets:
        assert value not in dump
