"""``paid_hooks.instrument("bedrock")``: botocore event hooks on plain boto3 clients."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.session
import genai_prices
import pytest
from botocore.eventstream import EventStream
from botocore.response import StreamingBody

import paid_hooks
import paid_hooks_bedrock
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage
from paid_hooks_bedrock import PaidBedrock

SONNET = "anthropic.claude-3-5-sonnet-20240620-v1:0"
NOVA = "us.amazon.nova-pro-v1:0"
MESSAGES = [{"role": "user", "content": [{"text": "Book the meeting."}]}]
ANTHROPIC_BODY = json.dumps({
    "anthropic_version": "bedrock-2023-05-31", "max_tokens": 100,
    "messages": [{"role": "user", "content": "Book the meeting."}],
}).encode()
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def new_client(fake: FakeProviderServer, session: Any = None) -> Any:
    factory = session.client if session is not None else boto3.client
    return factory("bedrock-runtime", endpoint_url=fake.url + "/bedrock",
                   region_name="us-east-1", **CREDENTIALS)


def price(model: str, **usage: int) -> Decimal:
    result = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="aws")
    return Decimal(result.total_price)


@pytest.fixture
def instrumented(paid_ledger) -> Iterator[None]:
    assert "bedrock" in paid_hooks.instrument("bedrock")
    try:
        yield
    finally:
        paid_hooks.uninstrument("bedrock")


def test_all_four_operations_are_recorded(instrumented, paid_ledger, fake_provider):
    fake_provider.queue(
        FakeReply(usage=FakeUsage(1000, 100, cache_read_tokens=600, cache_write_tokens=100)),
        FakeReply(usage=FakeUsage(200, 20)),
        FakeReply(usage=FakeUsage(300, 30, cache_read_tokens=100)),
        FakeReply(usage=FakeUsage(400, 40)),
    )
    client = new_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
        client.converse(modelId=SONNET, messages=MESSAGES)
        stream = client.converse_stream(modelId=NOVA, messages=MESSAGES)["stream"]
        assert isinstance(stream, EventStream)
        assert "metadata" in list(stream)[-1]
        body = client.invoke_model(modelId=SONNET, body=ANTHROPIC_BODY)["body"]
        assert isinstance(body, StreamingBody)
        assert json.loads(body.read())["type"] == "message"
        events = list(client.invoke_model_with_response_stream(
            modelId=SONNET, body=ANTHROPIC_BODY)["body"])
        assert json.loads(events[0]["chunk"]["bytes"])["type"] == "message_start"
        paid_hooks.signal("meeting_booked", enable_cost_tracing=True)

    rows = paid_ledger.calls()
    assert [(r["captured_by"], r["streaming"], r["model"]) for r in rows] == [
        ("bedrock", 0, SONNET), ("bedrock", 1, NOVA), ("bedrock", 0, SONNET),
        ("bedrock", 1, SONNET)]
    assert [(r["input_tokens"], r["output_tokens"], r["cache_read_tokens"],
             r["cache_write_tokens"]) for r in rows] == [
        (1000, 100, 600, 100), (200, 20, None, None), (300, 30, 100, 0), (400, 40, 0, 0)]
    expected = [
        price(SONNET, input_tokens=1000, output_tokens=100, cache_read_tokens=600,
              cache_write_tokens=100, cache_write_5m_tokens=100),
        price(NOVA, input_tokens=200, output_tokens=20),
        price(SONNET, input_tokens=300, output_tokens=30, cache_read_tokens=100,
              cache_write_tokens=0, cache_write_5m_tokens=0, cache_write_1h_tokens=0),
        price(SONNET, input_tokens=400, output_tokens=40, cache_read_tokens=0,
              cache_write_tokens=0, cache_write_5m_tokens=0, cache_write_1h_tokens=0),
    ]
    assert [Decimal(r["cost_usd"]) for r in rows] == expected
    assert [r["response_id"] for r in rows] == [e.response_id for e in fake_provider.exchanges]
    [signal] = paid_ledger.signals()
    assert signal["ai_calls"] == 4
    assert Decimal(signal["cost_usd"]) == sum(expected, Decimal(0))


@pytest.mark.parametrize("method", ["converse", "converse_stream", "invoke_model",
                                    "invoke_model_with_response_stream"])
def test_wrapper_and_auto_together_record_once(instrumented, paid_ledger, fake_provider,
                                               method):
    fake_provider.queue(FakeReply(usage=FakeUsage(500, 50)))
    client = PaidBedrock(new_client(fake_provider))
    kwargs: dict[str, Any] = ({"messages": MESSAGES} if method.startswith("converse")
                              else {"body": ANTHROPIC_BODY})
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
        response = getattr(client, method)(modelId=SONNET, **kwargs)
        if method == "converse_stream":
            list(response["stream"])
        elif method == "invoke_model_with_response_stream":
            list(response["body"])
        elif method == "invoke_model":
            response["body"].read()
    rows = paid_ledger.calls()
    assert len(rows) == 1
    assert (rows[0]["input_tokens"], rows[0]["output_tokens"]) == (500, 50)
    assert Decimal(rows[0]["cost_usd"]) == price(SONNET, input_tokens=500, output_tokens=50)


def test_error_reaches_the_caller_unchanged_and_costs_nothing(instrumented, paid_ledger,
                                                             fake_provider):
    fake_provider.queue(FakeReply(status=400, error_message="The model id is invalid"))
    client = new_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"), \
            pytest.raises(client.exceptions.ValidationException) as caught:
        client.converse(modelId=SONNET, messages=MESSAGES)
    assert caught.value.response["Error"] == {"Message": "The model id is invalid",
                                              "Code": "ValidationException"}
    [row] = paid_ledger.calls()
    assert row["call_status"] == "error"
    assert row["error_type"] == "ValidationException"
    assert row["cost_status"] == "no_charge"
    assert row["cost_usd"] is None
    assert row["response_id"] == caught.value.response["ResponseMetadata"]["RequestId"]


def test_connection_error_costs_nothing(instrumented, paid_ledger):
    with socket.socket() as sock:  # a loopback port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = boto3.client(
        "bedrock-runtime", endpoint_url=f"http://127.0.0.1:{port}/bedrock",
        region_name="us-east-1", config=botocore.config.Config(retries={"total_max_attempts": 1}),
        **CREDENTIALS)
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"), \
            pytest.raises(botocore.exceptions.EndpointConnectionError):
        client.converse(modelId=SONNET, messages=MESSAGES)
    [row] = paid_ledger.calls()
    assert row["error_type"] == "EndpointConnectionError"
    assert row["cost_status"] == "no_charge"


def test_abandoned_stream_is_usage_unknown(instrumented, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(100, 40)))
    client = new_client(fake_provider)
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
        stream = client.converse_stream(modelId=SONNET, messages=MESSAGES)["stream"]
        next(iter(stream))
        stream.close()
    [row] = paid_ledger.calls()
    assert row["cost_status"] == "usage_unknown"
    assert row["cost_reason"] == "stream_closed_early"


def test_default_session_created_before_instrumenting_is_covered(paid_ledger, fake_provider):
    previous = boto3.DEFAULT_SESSION
    boto3.setup_default_session(**CREDENTIALS, region_name="us-east-1")
    try:
        paid_hooks.instrument("bedrock")
        fake_provider.queue(FakeReply(usage=FakeUsage(10, 5)))
        client = boto3.client("bedrock-runtime", endpoint_url=fake_provider.url + "/bedrock")
        with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
            client.converse(modelId=SONNET, messages=MESSAGES)
        [row] = paid_ledger.calls()
        assert (row["input_tokens"], row["captured_by"]) == (10, "bedrock")
    finally:
        paid_hooks.uninstrument("bedrock")
        boto3.DEFAULT_SESSION = previous


def test_botocore_sessions_are_covered(instrumented, paid_ledger, fake_provider):
    fake_provider.queue(FakeReply(usage=FakeUsage(10, 5)))
    session = botocore.session.get_session()
    client = session.create_client("bedrock-runtime", endpoint_url=fake_provider.url + "/bedrock",
                                   region_name="us-east-1", **CREDENTIALS)
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
        client.converse(modelId=SONNET, messages=MESSAGES)
    assert len(paid_ledger.calls()) == 1


def test_instrument_is_idempotent(paid_ledger, fake_provider):
    try:
        paid_hooks_bedrock.instrument()
        paid_hooks_bedrock.instrument()
        paid_hooks.instrument("bedrock")
        fake_provider.queue(FakeReply(usage=FakeUsage(10, 5)))
        with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
            new_client(fake_provider, boto3.Session()).converse(modelId=SONNET,
                                                                 messages=MESSAGES)
        assert len(paid_ledger.calls()) == 1
    finally:
        paid_hooks.uninstrument("bedrock")
        paid_hooks_bedrock.uninstrument()
        paid_hooks_bedrock.uninstrument()


def test_uninstrument_restores(paid_ledger, fake_provider):
    paid_hooks.instrument("bedrock")
    created_while_instrumented = new_client(fake_provider, boto3.Session())
    paid_hooks.uninstrument("bedrock")
    created_after = new_client(fake_provider, boto3.Session())
    fake_provider.queue(*[FakeReply(usage=FakeUsage(10, 5))] * 3)
    with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
        created_while_instrumented.converse(modelId=SONNET, messages=MESSAGES)
        created_after.converse(modelId=SONNET, messages=MESSAGES)
        # control: the ledger does record calls made through the wrapper
        PaidBedrock(created_after).converse(modelId=NOVA, messages=MESSAGES)
    rows = paid_ledger.calls()
    assert [r["model"] for r in rows] == [NOVA]
    assert len(fake_provider.exchanges) == 3


def test_reinstrument_after_uninstrument_records_once(paid_ledger, fake_provider):
    paid_hooks.instrument("bedrock")
    paid_hooks.uninstrument("bedrock")
    paid_hooks.instrument("bedrock")
    try:
        fake_provider.queue(FakeReply(usage=FakeUsage(10, 5)))
        with paid_hooks.paid_tracing("acme", external_agent_id="sdr"):
            new_client(fake_provider, boto3.Session()).converse(modelId=SONNET,
                                                                 messages=MESSAGES)
        assert len(paid_ledger.calls()) == 1
    finally:
        paid_hooks.uninstrument("bedrock")
