"""OpenAI wire format: chat completions, responses, embeddings, images and audio.

Routes (JSON unless noted, SSE when the request streams):

* ``POST /v1/chat/completions``: every chunk carries ``"usage": null`` when
  ``stream_options.include_usage`` is set, and one extra final chunk with ``"choices": []``
  carries the usage, then ``data: [DONE]``. Without ``include_usage`` no usage is sent.
* ``POST /v1/responses``: a ``Response`` object; streamed as ``response.created``,
  ``response.in_progress``, the output item / content part / ``response.output_text.delta``
  events, and one terminal event (``response.completed``, or ``response.incomplete`` /
  ``response.failed``) whose ``response.usage`` is ``{input_tokens,
  input_tokens_details{cached_tokens, cache_write_tokens}, output_tokens,
  output_tokens_details{reasoning_tokens}, total_tokens}``. No ``[DONE]`` sentinel.
* ``POST /v1/embeddings``: ``usage{prompt_tokens, total_tokens}``; vectors are base64
  float32 when ``encoding_format`` is ``base64`` (the SDK's default), as the real API does.
* ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart): GPT
  image models report ``usage{input_tokens, input_tokens_details{text_tokens,
  image_tokens}, output_tokens, output_tokens_details{image_tokens, text_tokens},
  total_tokens}``; DALL-E models report no usage. ``stream=true`` sends
  ``image_generation.partial_image`` / ``image_generation.completed`` (``image_edit.*``)
  events, the completed one carrying the usage.
* ``POST /v1/audio/transcriptions`` (multipart): ``whisper-1`` reports
  ``usage{type: "duration", seconds}``, the ``gpt-4o*-transcribe`` models
  ``usage{type: "tokens", input_tokens, input_token_details{text_tokens, audio_tokens},
  output_tokens, total_tokens}``; ``text``/``srt``/``vtt`` formats are plain text without
  usage. ``stream=true`` sends ``transcript.text.delta`` events and a
  ``transcript.text.done`` event with the usage.
* ``POST /v1/audio/speech``: audio bytes, no usage; with ``stream_format: "sse"`` the
  ``speech.audio.delta`` events and a ``speech.audio.done`` event carrying
  ``usage{input_tokens, output_tokens, total_tokens}``.

``FakeReply.extra`` knobs read here: ``terminal`` (responses: ``"response.incomplete"`` or
``"response.failed"`` instead of a completed response), ``input_image_tokens`` and
``output_text_tokens`` (images), ``audio_seconds`` (whisper duration, default 12.5),
``input_audio_tokens`` (transcription tokens that are audio; default all input).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import re
import struct
import time
from collections.abc import Iterator
from typing import Any

from paid_hooks.testing.fake.server import (
    Exchange,
    FakeProviderServer,
    FakeRequest,
    FakeResponse,
    FakeUsage,
    estimate_tokens,
    json_response,
    sse_event,
    sse_response,
    text_pieces,
    usage_sent,
)

__all__ = ["chat_usage", "embeddings_usage", "images_usage", "register", "responses_usage",
           "transcription_usage"]


# -- usage renderers (canonical FakeUsage -> the API's own shape) -------------------------


def chat_usage(u: FakeUsage) -> dict[str, Any]:
    """OpenAI Chat Completions ``usage`` (inclusive counts, details as subsets)."""
    return {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def responses_usage(u: FakeUsage) -> dict[str, Any]:
    """OpenAI Responses ``usage`` (inclusive counts, details as subsets)."""
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens,
                                 "cache_write_tokens": u.cache_write_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def embeddings_usage(u: FakeUsage) -> dict[str, Any]:
    """OpenAI Embeddings ``usage``: input only."""
    return {"prompt_tokens": u.input_tokens, "total_tokens": u.input_tokens}


def images_usage(u: FakeUsage, *, input_image_tokens: int = 0,
                 output_text_tokens: int = 0) -> dict[str, Any]:
    """GPT image models' ``usage``: inclusive totals with a text/image split of each."""
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"text_tokens": u.input_tokens - input_image_tokens,
                                 "image_tokens": input_image_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"image_tokens": u.output_tokens - output_text_tokens,
                                  "text_tokens": output_text_tokens},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def transcription_usage(u: FakeUsage, *, input_audio_tokens: int | None = None) -> dict[str, Any]:
    """Token-billed transcription ``usage`` (``type: "tokens"``)."""
    audio = u.input_tokens if input_audio_tokens is None else input_audio_tokens
    return {
        "type": "tokens",
        "input_tokens": u.input_tokens,
        "input_token_details": {"text_tokens": u.input_tokens - audio, "audio_tokens": audio},
        "output_tokens": u.output_tokens,
        "total_tokens": u.input_tokens + u.output_tokens,
    }


# -- shared helpers -------------------------------------------------------------------------


def openai_error(status: int, message: str) -> FakeResponse:
    return json_response(status, {"error": {"message": message, "type": "invalid_request_error",
                                            "param": None, "code": None}})


def _flag(value: Any) -> bool:
    """A JSON boolean or a multipart form value (``"true"``)."""
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def parse_multipart(request: FakeRequest) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body; file parts become ``<file: N bytes>``."""
    head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    fields: dict[str, Any] = {}
    if not message.is_multipart():
        return fields
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        if part.get_filename() is not None:
            value: Any = f"<file: {len(payload)} bytes>"
        else:
            value = payload.decode("utf-8", "replace")
        if name.endswith("[]"):
            fields.setdefault(name[:-2], []).append(value)
        else:
            fields[name] = value
    return fields


# -- chat completions ----------------------------------------------------------------------


def chat_completions(server: FakeProviderServer, request: FakeRequest,
                     match: re.Match[str]) -> FakeResponse:
    body, reply, model, stream, usage = server.begin_json(request, "openai")
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    if reply.status >= 400:
        server.record_error("openai", "chat", request, body, reply, model, stream)
        return openai_error(reply.status, reply.error_message)
    response_id = server.new_id("chatcmpl-")
    created = int(time.time())
    tier = reply.service_tier or "default"
    sent = not reply.omit_usage and (include_usage or not stream)
    cut = reply.cut_stream_after
    if stream and cut is not None:
        sent = False
    server.record(Exchange("openai", "chat", request.path, request.headers, body, 200,
                           response_id, model, usage, stream, sent))
    if not stream:
        payload: dict[str, Any] = {
            "id": response_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None,
                            "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }],
            "service_tier": tier,
            "system_fingerprint": "fp_fake",
        }
        if not reply.omit_usage:
            payload["usage"] = chat_usage(usage)
        return json_response(200, payload, gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        base = {"id": response_id, "object": "chat.completion.chunk", "created": created,
                "model": model, "service_tier": tier, "system_fingerprint": "fp_fake"}
        extra = {"usage": None} if include_usage else {}
        first = {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "",
                                                            "refusal": None},
                                      "logprobs": None, "finish_reason": None}], **extra}
        yield sse_event(first)
        for piece in text_pieces(reply.text):
            yield sse_event({**base, "choices": [{"index": 0, "delta": {"content": piece},
                                                  "logprobs": None, "finish_reason": None}],
                             **extra})
        yield sse_event({**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                              "finish_reason": "stop"}], **extra})
        if include_usage and not reply.omit_usage:
            yield sse_event({**base, "choices": [], "usage": chat_usage(usage)})
        yield sse_event("[DONE]")

    return sse_response(events(), cut_after=cut, gzip_body=reply.gzip)


# -- responses -----------------------------------------------------------------------------


def _response_object(*, response_id: str, created: int, model: str | None, body: dict[str, Any],
                     status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None,
                     tier: str, error: dict[str, Any] | None = None,
                     incomplete: dict[str, Any] | None = None,
                     omit_usage: bool = False) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": response_id,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": bool(body.get("background")),
        "completed_at": created if status == "completed" else None,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": None,
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "safety_identifier": None,
        "service_tier": tier,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "user": None,
        "metadata": body.get("metadata") or {},
        "usage": usage,
    }
    if omit_usage:
        del obj["usage"]
    return obj


def responses(server: FakeProviderServer, request: FakeRequest,
              match: re.Match[str]) -> FakeResponse:
    body, reply, model, stream, usage = server.begin_json(request, "openai")
    if reply.status >= 400:
        server.record_error("openai", "responses", request, body, reply, model, stream)
        return openai_error(reply.status, reply.error_message)
    response_id = server.new_id("resp_")
    message_id = server.new_id("msg_")
    reasoning_id = server.new_id("rs_") if usage.reasoning_tokens else None
    created = int(time.time())
    tier = reply.service_tier or "default"
    terminal = str(reply.extra.get("terminal", "response.completed"))
    status = {"response.completed": "completed", "response.incomplete": "incomplete",
              "response.failed": "failed"}[terminal]
    server.record(Exchange("openai", "responses", request.path, request.headers, body, 200,
                           response_id, model, usage, stream, usage_sent(reply, stream)))
    text_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": reply.text}
    message = {"id": message_id, "type": "message", "status": "completed",
               "content": [text_part], "role": "assistant"}
    reasoning = ({"id": reasoning_id, "type": "reasoning", "summary": []}
                 if reasoning_id else None)
    output = [item for item in (reasoning, message) if item is not None]
    error = ({"code": "server_error", "message": reply.error_message}
             if status == "failed" else None)
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None

    def final(usage_json: dict[str, Any] | None) -> dict[str, Any]:
        return _response_object(response_id=response_id, created=created, model=model,
                                body=body, status=status, output=output, usage=usage_json,
                                tier=tier, error=error, incomplete=incomplete,
                                omit_usage=reply.omit_usage)

    if not stream:
        return json_response(200, final(responses_usage(usage)), gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        seq = 0

        def event(kind: str, **fields: Any) -> bytes:
            nonlocal seq
            data = {"type": kind, "sequence_number": seq, **fields}
            seq += 1
            return sse_event(data, kind)

        start = _response_object(response_id=response_id, created=created, model=model,
                                 body=body, status="in_progress", output=[], usage=None,
                                 tier="auto")
        yield event("response.created", response=start)
        yield event("response.in_progress", response=start)
        index = 0
        if reasoning is not None:
            yield event("response.output_item.added", output_index=index, item=reasoning)
            yield event("response.output_item.done", output_index=index, item=reasoning)
            index += 1
        yield event("response.output_item.added", output_index=index,
                    item={**message, "status": "in_progress", "content": []})
        yield event("response.content_part.added", item_id=message_id, output_index=index,
                    content_index=0, part={**text_part, "text": ""})
        for piece in text_pieces(reply.text):
            yield event("response.output_text.delta", item_id=message_id, output_index=index,
                        content_index=0, delta=piece, logprobs=[])
        yield event("response.output_text.done", item_id=message_id, output_index=index,
                    content_index=0, text=reply.text, logprobs=[])
        yield event("response.content_part.done", item_id=message_id, output_index=index,
                    content_index=0, part=text_part)
        yield event("response.output_item.done", output_index=index, item=message)
        yield event(terminal, response=final(responses_usage(usage)))

    return sse_response(events(), cut_after=reply.cut_stream_after, gzip_body=reply.gzip)


# -- embeddings ----------------------------------------------------------------------------


def _embedding_inputs(value: Any) -> list[Any]:
    if isinstance(value, list) and value and not isinstance(value[0], int):
        return value
    return [value]


def embeddings(server: FakeProviderServer, request: FakeRequest,
               match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("openai", body)
    model = reply.model or body.get("model")
    inputs = _embedding_inputs(body.get("input"))
    usage = reply.usage or FakeUsage(
        sum(len(i) if isinstance(i, list) else estimate_tokens(str(i)) for i in inputs), 0)
    if reply.status >= 400:
        server.record_error("openai", "embeddings", request, body, reply, model, False)
        return openai_error(reply.status, reply.error_message)
    server.record(Exchange("openai", "embeddings", request.path, request.headers, body, 200,
                           None, model, usage, False, not reply.omit_usage))
    dims = int(body.get("dimensions") or 8)
    data = []
    for index in range(len(inputs)):
        vector = [round((index + 1) / (d + 2), 4) for d in range(dims)]
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    payload: dict[str, Any] = {"object": "list", "data": data, "model": model}
    if not reply.omit_usage:
        payload["usage"] = embeddings_usage(usage)
    return json_response(200, payload, gzip_body=reply.gzip)


# -- images --------------------------------------------------------------------------------

_FAKE_PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake image").decode()


def _is_gpt_image(model: str) -> bool:
    return model.startswith(("gpt-image", "chatgpt-image"))


def _images(server: FakeProviderServer, request: FakeRequest, body: dict[str, Any],
            operation: str, event_prefix: str) -> FakeResponse:
    reply = server.next_reply("openai", body)
    model = reply.model or body.get("model") or "dall-e-2"
    stream = _flag(body.get("stream"))
    count = int(body.get("n") or 1)
    gpt_image = _is_gpt_image(model)
    usage = reply.usage or FakeUsage(estimate_tokens(str(body.get("prompt", ""))) + 8,
                                     272 * count)
    if reply.status >= 400:
        server.record_error("openai", operation, request, body, reply, model, stream)
        return openai_error(reply.status, reply.error_message)
    sent = gpt_image and usage_sent(reply, stream)
    server.record(Exchange("openai", operation, request.path, request.headers, body, 200, None,
                           model, usage if gpt_image else None, stream, sent))
    created = int(time.time())
    usage_json = images_usage(usage,
                              input_image_tokens=int(reply.extra.get("input_image_tokens", 0)),
                              output_text_tokens=int(reply.extra.get("output_text_tokens", 0)))
    size = body.get("size") or "1024x1024"
    if not stream:
        if gpt_image:
            payload: dict[str, Any] = {
                "created": created,
                "background": "opaque",
                "data": [{"b64_json": _FAKE_PNG} for _ in range(count)],
                "output_format": body.get("output_format") or "png",
                "quality": body.get("quality") or "high",
                "size": size,
            }
            if not reply.omit_usage:
                payload["usage"] = usage_json
        else:
            url_format = (body.get("response_format") or "url") == "url"
            image: dict[str, Any] = ({"url": "https://fake.invalid/image.png"} if url_format
                                     else {"b64_json": _FAKE_PNG})
            if model == "dall-e-3":
                image["revised_prompt"] = str(body.get("prompt", ""))
            payload = {"created": created, "data": [dict(image) for _ in range(count)]}
        return json_response(200, payload, gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        common = {"created_at": created, "size": size, "quality": body.get("quality") or "high",
                  "background": "opaque", "output_format": body.get("output_format") or "png"}
        for index in range(int(body.get("partial_images") or 0)):
            kind = f"{event_prefix}.partial_image"
            yield sse_event({"type": kind, "b64_json": _FAKE_PNG, "partial_image_index": index,
                             **common}, kind)
        kind = f"{event_prefix}.completed"
        done: dict[str, Any] = {"type": kind, "b64_json": _FAKE_PNG, **common}
        if not reply.omit_usage:
            done["usage"] = usage_json
        yield sse_event(done, kind)

    return sse_response(events(), cut_after=reply.cut_stream_after, gzip_body=reply.gzip)


def images_generations(server: FakeProviderServer, request: FakeRequest,
                       match: re.Match[str]) -> FakeResponse:
    return _images(server, request, request.json(), "image_generation", "image_generation")


def images_edits(server: FakeProviderServer, request: FakeRequest,
                 match: re.Match[str]) -> FakeResponse:
    return _images(server, request, parse_multipart(request), "image_edit", "image_edit")


# -- audio ---------------------------------------------------------------------------------


def transcriptions(server: FakeProviderServer, request: FakeRequest,
                   match: re.Match[str]) -> FakeResponse:
    body = parse_multipart(request)
    reply = server.next_reply("openai", body)
    model = reply.model or body.get("model")
    stream = _flag(body.get("stream"))
    response_format = body.get("response_format") or "json"
    usage = server.usage_for(reply, body)
    if reply.status >= 400:
        server.record_error("openai", "transcription", request, body, reply, model, stream)
        return openai_error(reply.status, reply.error_message)
    by_duration = model == "whisper-1"
    in_band = response_format in ("json", "verbose_json", "diarized_json") or stream
    server.record(Exchange("openai", "transcription", request.path, request.headers, body, 200,
                           None, model, usage, stream, in_band and usage_sent(reply, stream)))
    seconds = float(reply.extra.get("audio_seconds", 12.5))
    audio_tokens = reply.extra.get("input_audio_tokens")
    usage_json = ({"type": "duration", "seconds": seconds} if by_duration else
                  transcription_usage(usage, input_audio_tokens=None if audio_tokens is None
                                      else int(audio_tokens)))
    if not stream:
        if not in_band:
            return FakeResponse(status=200, headers={"content-type": "text/plain"},
                                body=reply.text.encode(), gzip=reply.gzip)
        payload: dict[str, Any] = {"text": reply.text}
        if response_format == "verbose_json":
            payload = {"task": "transcribe", "language": "english", "duration": seconds,
                       "text": reply.text, "segments": []}
        if not reply.omit_usage:
            payload["usage"] = usage_json
        return json_response(200, payload, gzip_body=reply.gzip)

    def events() -> Iterator[bytes]:
        for piece in text_pieces(reply.text):
            yield sse_event({"type": "transcript.text.delta", "delta": piece, "logprobs": None})
        done: dict[str, Any] = {"type": "transcript.text.done", "text": reply.text,
                                "logprobs": None}
        if not reply.omit_usage:
            done["usage"] = usage_json
        yield sse_event(done)

    return sse_response(events(), cut_after=reply.cut_stream_after, gzip_body=reply.gzip)


def speech(server: FakeProviderServer, request: FakeRequest,
           match: re.Match[str]) -> FakeResponse:
    body = request.json()
    reply = server.next_reply("openai", body)
    model = reply.model or body.get("model")
    sse = body.get("stream_format") == "sse"
    usage = reply.usage or FakeUsage(estimate_tokens(str(body.get("input", ""))),
                                     25 * estimate_tokens(str(body.get("input", ""))))
    if reply.status >= 400:
        server.record_error("openai", "speech", request, body, reply, model, sse)
        return openai_error(reply.status, reply.error_message)
    server.record(Exchange("openai", "speech", request.path, request.headers, body, 200, None,
                           model, usage, sse, sse and usage_sent(reply, sse)))
    audio = b"ID3\x04\x00fake-mp3-audio" * 4
    if not sse:
        return FakeResponse(status=200, headers={"content-type": "audio/mpeg"}, body=audio)

    def events() -> Iterator[bytes]:
        for i in range(0, len(audio), 16):
            yield sse_event({"type": "speech.audio.delta",
                             "audio": base64.b64encode(audio[i:i + 16]).decode()})
        done: dict[str, Any] = {"type": "speech.audio.done"}
        if not reply.omit_usage:
            done["usage"] = {"input_tokens": usage.input_tokens,
                             "output_tokens": usage.output_tokens,
                             "total_tokens": usage.input_tokens + usage.output_tokens}
        yield sse_event(done)

    return sse_response(events(), cut_after=reply.cut_stream_after, gzip_body=reply.gzip)


def register(server: FakeProviderServer) -> None:
    prefix = r"(?:/[^/]+)*/v1"
    server.route("POST", prefix + r"/chat/completions", chat_completions)
    server.route("POST", prefix + r"/responses", responses)
    server.route("POST", prefix + r"/embeddings", embeddings)
    server.route("POST", prefix + r"/images/generations", images_generations)
    server.route("POST", prefix + r"/images/edits", images_edits)
    server.route("POST", prefix + r"/audio/transcriptions", transcriptions)
    server.route("POST", prefix + r"/audio/speech", speech)
