"""OpenAI plugin: embeddings, images and audio through the wrapper, on the real SDK."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types import CreateEmbeddingResponse, ImagesResponse

import paid_hooks
from paid_hooks.testing import FakeProviderServer, FakeReply, FakeUsage, LedgerView
from paid_hooks_openai import PaidAsyncOpenAI, PaidOpenAI

AUDIO = ("call.mp3", b"ID3\x04\x00 fake recording")


def price(model: str, **usage: Any) -> Decimal:
    """genai-prices' price, independent of paid-hooks."""
    result = genai_prices.calc_price(genai_prices.Usage(**usage), model, provider_id="openai")
    return Decimal(result.total_price)


@pytest.fixture
def client(fake_provider: FakeProviderServer) -> PaidOpenAI:
    return PaidOpenAI(OpenAI(base_url=fake_provider.openai_url, api_key="sk-test",
                             max_retries=0))


@pytest.fixture
def aclient(fake_provider: FakeProviderServer) -> PaidAsyncOpenAI:
    return PaidAsyncOpenAI(AsyncOpenAI(base_url=fake_provider.openai_url, api_key="sk-test",
                                       max_retries=0))


def trace() -> Any:
    return paid_hooks.paid_tracing("acme", external_agent_id="media")


def only_row(ledger: LedgerView, operation: str) -> dict[str, Any]:
    [row] = ledger.calls()
    assert (row["provider"], row["captured_by"], row["operation"]) == ("openai", "openai",
                                                                       operation)
    return row


# -- embeddings ---------------------------------------------------------------------------


def test_embeddings(client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=FakeUsage(5321, 0)))
    with trace():
        result = client.embeddings.create(model="text-embedding-3-small",
                                          input=["first lead note", "second lead note"])
    assert type(result) is CreateEmbeddingResponse
    assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    row = only_row(paid_ledger, "embeddings")
    assert (row["input_tokens"], row["output_tokens"]) == (5321, 0)
    assert row["model"] == "text-embedding-3-small"
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == price("text-embedding-3-small", input_tokens=5321)


async def test_embeddings_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=FakeUsage(900, 0)))
    with trace():
        await aclient.embeddings.create(model="text-embedding-3-large", input="note",
                                        encoding_format="float")
    row = only_row(paid_ledger, "embeddings")
    assert Decimal(row["cost_usd"]) == price("text-embedding-3-large", input_tokens=900)


def test_embeddings_without_usage(client: PaidOpenAI, fake_provider: Any,
                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=FakeUsage(10, 0), omit_usage=True))
    with trace():
        client.embeddings.create(model="text-embedding-3-small", input="note")
    row = only_row(paid_ledger, "embeddings")
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "not_reported")


def test_embeddings_error(client: PaidOpenAI, fake_provider: Any,
                          paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(status=400, error_message="too long"))
    with trace(), pytest.raises(openai.BadRequestError, match="too long"):
        client.embeddings.create(model="text-embedding-3-small", input="note")
    assert only_row(paid_ledger, "embeddings")["cost_status"] == "no_charge"


# -- images -------------------------------------------------------------------------------

IMAGE_USAGE = FakeUsage(150, 4160)


def gpt_image_cost(usage: FakeUsage = IMAGE_USAGE, image_in: int = 0) -> Decimal:
    return price("gpt-image-1", input_tokens=usage.input_tokens,
                 output_tokens=usage.output_tokens, input_image_tokens=image_in,
                 output_image_tokens=usage.output_tokens)


def test_gpt_image_generation_records_tokens(client: PaidOpenAI, fake_provider: Any,
                                             paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=IMAGE_USAGE))
    with trace():
        result = client.images.generate(model="gpt-image-1", prompt="a lighthouse", n=2)
    assert type(result) is ImagesResponse and len(result.data or []) == 2
    row = only_row(paid_ledger, "image_generation")
    assert (row["input_tokens"], row["output_tokens"]) == (150, 4160)
    assert json.loads(row["usage_json"])["output_image_tokens"] == 4160
    assert row["model"] == "gpt-image-1"
    assert Decimal(row["cost_usd"]) == gpt_image_cost()


async def test_gpt_image_generation_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                          paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=IMAGE_USAGE))
    with trace():
        await aclient.images.generate(model="gpt-image-1", prompt="a lighthouse")
    row = only_row(paid_ledger, "image_generation")
    assert Decimal(row["cost_usd"]) == gpt_image_cost()


def test_dalle_records_image_count_as_unpriced(client: PaidOpenAI, fake_provider: Any,
                                               paid_ledger: LedgerView) -> None:
    with trace():
        result = client.images.generate(model="dall-e-3", prompt="a lighthouse", n=2)
    assert result.usage is None
    row = only_row(paid_ledger, "image_generation")
    assert json.loads(row["usage_json"])["units"] == {"images": 2}
    assert row["cost_status"] == "unpriced"
    assert row["cost_reason"] == "no_price_for_units:images"
    assert row["cost_usd"] is None


def test_gpt_image_stream(client: PaidOpenAI, fake_provider: Any,
                          paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=IMAGE_USAGE))
    with trace():
        events = [e.type for e in client.images.generate(
            model="gpt-image-1", prompt="a lighthouse", stream=True, partial_images=2)]
    assert events == ["image_generation.partial_image"] * 2 + ["image_generation.completed"]
    row = only_row(paid_ledger, "image_generation")
    assert row["streaming"] == 1
    assert Decimal(row["cost_usd"]) == gpt_image_cost()


async def test_gpt_image_stream_async_cut_short(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                                paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=IMAGE_USAGE, cut_stream_after=1))
    with trace():
        stream = await aclient.images.generate(model="gpt-image-1", prompt="a lighthouse",
                                               stream=True, partial_images=2)
        events = [e.type async for e in stream]
    assert events == ["image_generation.partial_image"]
    row = only_row(paid_ledger, "image_generation")
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown", "stream_closed_early")


def test_image_edit_with_input_image_tokens(client: PaidOpenAI, fake_provider: Any,
                                            paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=IMAGE_USAGE, extra={"input_image_tokens": 120}))
    with trace():
        client.images.edit(model="gpt-image-1", image=("logo.png", b"\x89PNG"),
                           prompt="add a hat")
    row = only_row(paid_ledger, "image_edit")
    assert json.loads(row["usage_json"])["input_image_tokens"] == 120
    assert Decimal(row["cost_usd"]) == gpt_image_cost(image_in=120)
    assert gpt_image_cost(image_in=120) != gpt_image_cost()


async def test_image_edit_async_and_streamed(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                            paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=IMAGE_USAGE), FakeReply(usage=IMAGE_USAGE))
    with trace():
        await aclient.images.edit(model="gpt-image-1", image=("logo.png", b"\x89PNG"),
                                  prompt="add a hat")
        stream = await aclient.images.edit(model="gpt-image-1", image=("logo.png", b"\x89PNG"),
                                           prompt="add a hat", stream=True)
        events = [e.type async for e in stream]
    assert events == ["image_edit.completed"]
    plain, streamed = paid_ledger.calls()
    assert (plain["streaming"], streamed["streaming"]) == (0, 1)
    for row in (plain, streamed):
        assert row["operation"] == "image_edit"
        assert Decimal(row["cost_usd"]) == gpt_image_cost()


# -- audio --------------------------------------------------------------------------------


def test_whisper_transcription_records_audio_seconds(client: PaidOpenAI, fake_provider: Any,
                                                     paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text="hello", extra={"audio_seconds": 95.5}))
    with trace():
        result = client.audio.transcriptions.create(model="whisper-1", file=AUDIO)
    assert result.text == "hello"
    row = only_row(paid_ledger, "transcription")
    assert json.loads(row["usage_json"])["units"] == {"audio_seconds": "95.5"}
    assert row["cost_status"] == "priced"
    assert Decimal(row["cost_usd"]) == price("whisper-1", audio_seconds=Decimal("95.5"))


def test_gpt4o_transcription_records_audio_tokens(client: PaidOpenAI, fake_provider: Any,
                                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=FakeUsage(1400, 260),
                                  extra={"input_audio_tokens": 1350}))
    with trace():
        client.audio.transcriptions.create(model="gpt-4o-transcribe", file=AUDIO)
    row = only_row(paid_ledger, "transcription")
    assert (row["input_tokens"], row["output_tokens"]) == (1400, 260)
    assert json.loads(row["usage_json"])["input_audio_tokens"] == 1350
    assert Decimal(row["cost_usd"]) == price("gpt-4o-transcribe", input_tokens=1400,
                                             output_tokens=260, input_audio_tokens=1350)


async def test_transcription_async_verbose(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                           paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(extra={"audio_seconds": 30}))
    with trace():
        await aclient.audio.transcriptions.create(model="whisper-1", file=AUDIO,
                                                  response_format="verbose_json")
    row = only_row(paid_ledger, "transcription")
    assert Decimal(row["cost_usd"]) == price("whisper-1", audio_seconds=30)


def test_transcription_as_plain_text_has_no_usage(client: PaidOpenAI, fake_provider: Any,
                                                  paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text="hello"))
    with trace():
        text = client.audio.transcriptions.create(model="whisper-1", file=AUDIO,
                                                  response_format="text")
    assert text == "hello"
    row = only_row(paid_ledger, "transcription")
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown",
                                                         "not_reported_for_response_format")


def test_transcription_stream(client: PaidOpenAI, fake_provider: Any,
                              paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text="a fairly long transcript", usage=FakeUsage(800, 40)))
    with trace():
        events = list(client.audio.transcriptions.create(model="gpt-4o-mini-transcribe",
                                                         file=AUDIO, stream=True))
    assert events[-1].type == "transcript.text.done"
    row = only_row(paid_ledger, "transcription")
    assert row["streaming"] == 1
    assert Decimal(row["cost_usd"]) == price("gpt-4o-mini-transcribe", input_tokens=800,
                                             output_tokens=40, input_audio_tokens=800)


async def test_transcription_stream_async(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                         paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(text="short", usage=FakeUsage(300, 10)))
    with trace():
        stream = await aclient.audio.transcriptions.create(model="gpt-4o-transcribe",
                                                           file=AUDIO, stream=True)
        events = [e.type async for e in stream]
    assert events == ["transcript.text.delta", "transcript.text.done"]
    row = only_row(paid_ledger, "transcription")
    assert Decimal(row["cost_usd"]) == price("gpt-4o-transcribe", input_tokens=300,
                                             output_tokens=10, input_audio_tokens=300)


def test_tts1_speech_is_priced_per_input_character(client: PaidOpenAI, fake_provider: Any,
                                                   paid_ledger: LedgerView) -> None:
    line = "Your meeting is confirmed for Tuesday."
    with trace():
        audio = client.audio.speech.create(model="tts-1", voice="alloy", input=line)
    assert audio.content.startswith(b"ID3")
    row = only_row(paid_ledger, "text_to_speech")
    usage = json.loads(row["usage_json"])
    assert usage["units"] == {"input_characters": len(line)} and usage["estimated"] is True
    assert Decimal(row["cost_usd"]) == price("tts-1", input_characters=len(line))


async def test_speech_sse_reports_tokens(aclient: PaidAsyncOpenAI, fake_provider: Any,
                                         paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(usage=FakeUsage(12, 480)))
    with trace():
        await aclient.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy",
                                          input="Confirmed.", stream_format="sse")
    row = only_row(paid_ledger, "text_to_speech")
    assert (row["input_tokens"], row["output_tokens"]) == (12, 480)
    assert Decimal(row["cost_usd"]) == price("gpt-4o-mini-tts", input_tokens=12,
                                             output_tokens=480)


def test_token_billed_speech_without_usage_is_usage_unknown(
        client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    with trace():
        client.audio.speech.create(model="gpt-4o-mini-tts", voice="alloy", input="Confirmed.")
    row = only_row(paid_ledger, "text_to_speech")
    assert (row["cost_status"], row["cost_reason"]) == ("usage_unknown",
                                                         "speech_usage_not_reported")


def test_speech_error(client: PaidOpenAI, fake_provider: Any, paid_ledger: LedgerView) -> None:
    fake_provider.queue(FakeReply(status=500))
    with trace(), pytest.raises(openai.InternalServerError):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Confirmed.")
    assert only_row(paid_ledger, "text_to_speech")["cost_status"] == "no_charge"
