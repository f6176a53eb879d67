"""``PaidLangChainCallback``: records every LangChain chat-model / LLM run as one AI call.

Thread and task safety. One handler instance serves every thread and asyncio task. The
calls in progress live in ONE process-wide ``run_id -> _Run`` dict behind a lock, shared
by every instance, so a run seen by two instances (the global handler and one passed in
``config``) is recorded once. Nothing is attached to or detached from a context across
callbacks: the trace is captured by :func:`paid_hooks.start_call` in
``on_chat_model_start``, which runs in the run's own context (the caller's thread for
``invoke``/``stream``, the ``batch`` worker, or the task for ``ainvoke``/``astream``:
``run_inline = True`` keeps the handler out of LangChain's executor threads).

Cancelled async runs. A cancelled ``ainvoke``/``agenerate`` never sends ``on_llm_error``
(LangChain awaits its ``asyncio.gather`` before reporting errors), so a run started in an
asyncio task is also closed when that task finishes: still pending then, it is recorded
as ``usage_unknown("cancelled")`` (the request may have been billed).

Exactly once with lower layers. The call is started inside ``handle.fallback()``: when a
provider auto-instrumentation or the HTTP hook records the same provider call (in the
same context), this handle stands down and the lower layer's record, which carries the
provider's response id, is the only one. Without a lower layer this handle records. A
record that does carry the provider's response id (non-streamed calls) is also
de-duplicated by the ledger (one row per response id per trace, the richest).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk

import paid_hooks
from paid_hooks_langchain import _usage

__all__ = ["CAPTURED_BY", "PaidLangChainCallback"]

log = logging.getLogger("paid_hooks.langchain")

CAPTURED_BY = "langchain"
_MAX_RUNS = 10_000
"""Runs whose end never arrives are evicted (as ``usage_unknown``) beyond this many."""

_OPENAI_PROVIDERS = frozenset({"openai", "azure.ai.openai"})


@dataclass(eq=False, slots=True)
class _Run:
    handle: paid_hooks.CallHandle
    fallback: AbstractContextManager[Any] | None
    provider: str
    streamed: bool
    task: asyncio.Task[Any] | None = None
    on_task_done: Callable[[asyncio.Task[Any]], None] | None = None
    thread: int = 0


_lock = threading.Lock()
_runs: dict[Any, _Run] = {}
"""Pending runs by :func:`_key` of their run id."""
_get_running_loop = asyncio.events._get_running_loop
"""The running loop or None: unlike ``asyncio.current_task()``, never raises (cheaper)."""


def _enter_fallback(handle: paid_hooks.CallHandle) -> AbstractContextManager[Any] | None:
    """Enter ``handle.fallback()`` by hand (exited at the run's end); None if unavailable."""
    factory = getattr(handle, "fallback", None)
    if factory is None:
        return None
    manager: AbstractContextManager[Any] = factory()
    manager.__enter__()
    return manager


def _exit_fallback(run: _Run) -> None:
    if run.fallback is not None:
        try:
            run.fallback.__exit__(None, None, None)
        except Exception:
            log.debug("paid_hooks: could not leave a LangChain fallback block", exc_info=True)


def _key(run_id: Any) -> Any:
    """A run id as a dict key: a UUID's int (``UUID.__hash__`` is Python code)."""
    return run_id.int if type(run_id) is UUID else run_id


def _take(run_id: Any) -> _Run | None:
    """Remove a run from the pending runs (once): leave its fallback block, stop its watch."""
    with _lock:
        run = _runs.pop(_key(run_id), None)
    if run is not None:
        _exit_fallback(run)
        if (run.task is not None and run.on_task_done is not None
                and run.thread == threading.get_ident()):
            run.task.remove_done_callback(run.on_task_done)
    return run


def _watch_task(run: _Run, run_id: UUID) -> None:
    """Close the run when the asyncio task it started in ends without an end event."""
    loop = _get_running_loop()
    if loop is None:
        return  # no event loop in this thread (invoke, stream, batch)
    task = asyncio.current_task(loop)
    if task is None:
        return

    def on_task_done(done: asyncio.Task[Any]) -> None:
        try:
            ended = _take(run_id)
            if ended is not None and not ended.handle.done:
                ended.handle.usage_unknown("cancelled" if done.cancelled() else
                                           "run_never_ended")
        except Exception:
            log.warning("paid_hooks: could not close a LangChain run", exc_info=True)

    run.task, run.on_task_done, run.thread = task, on_task_done, threading.get_ident()
    task.add_done_callback(on_task_done)


def _first_generation(response: Any) -> Any:
    generations = getattr(response, "generations", None)
    if generations and generations[0]:
        return generations[0][0]
    return None


def pending_runs() -> int:
    """How many runs are between their start and end event (for tests and diagnostics)."""
    with _lock:
        return len(_runs)


class PaidLangChainCallback(BaseCallbackHandler):
    """Records each chat-model or LLM run as one AI call; add it to ``config["callbacks"]``.

    ``llm.invoke(..., config={"callbacks": [PaidLangChainCallback()]})`` (or
    ``with_config``); child runs inherit it. Usage comes from the message's
    ``usage_metadata`` (already inclusive of cache for every provider), else from
    ``llm_output["token_usage"]``. A LangChain cache hit records nothing (no provider
    call). A stream closed early is ``usage_unknown("stream_closed_early")``; a stream
    without usage is ``usage_unknown`` with the reason. Never raises into LangChain.
    """

    run_inline = True
    """Run in the run's own context (not LangChain's executor) so the trace is visible."""
    raise_error = False
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def _starts_calls(self) -> bool:
        """Whether this handler starts recording new runs (the global one can be switched off)."""
        return True

    # -- start --------------------------------------------------------------------------

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, "chat", serialized, metadata, kwargs.get("invocation_params"))

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, "text_completion", serialized, metadata,
                    kwargs.get("invocation_params"))

    def _start(self, run_id: UUID, operation: str, serialized: Any, metadata: Any,
               params: Any) -> None:
        try:
            if not self._starts_calls():
                return
            provider = _usage.provider_name(metadata, params, serialized)
            model = _usage.request_model(metadata, params)
            streaming = isinstance(params, dict) and bool(
                params.get("stream") or params.get("streaming"))
            evicted: _Run | None = None
            key = _key(run_id)
            with _lock:
                if key in _runs:
                    return  # another PaidLangChainCallback instance records this run
                handle = paid_hooks.start_call(
                    provider=provider, operation=operation, request_model=model,
                    captured_by=CAPTURED_BY, streaming=streaming)
                if not handle.recording:
                    return  # a higher layer records this call
                run = _Run(handle, _enter_fallback(handle), provider, streaming)
                _runs[key] = run
                _watch_task(run, run_id)
                if len(_runs) > _MAX_RUNS:
                    evicted = _runs.pop(next(iter(_runs)))
            if evicted is not None:
                evicted.handle.usage_unknown("run_never_ended")
        except Exception:
            log.warning("paid_hooks: could not start recording a LangChain run", exc_info=True)

    # -- progress -----------------------------------------------------------------------

    def on_llm_new_token(self, token: Any, *, chunk: Any = None, run_id: UUID,
                         parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        run = _runs.get(run_id.int if type(run_id) is UUID else run_id)
        if run is not None and not run.streamed:
            run.streamed = True
            run.handle.streaming = True

    # -- end ----------------------------------------------------------------------------

    def on_llm_end(self, response: Any, *, run_id: UUID, parent_run_id: UUID | None = None,
                   **kwargs: Any) -> None:
        try:
            run = _take(run_id)
            if run is None or run.handle.done:
                return
            self._finish(run, response)
        except Exception:
            log.warning("paid_hooks: could not record a LangChain run", exc_info=True)

    def _finish(self, run: _Run, response: Any) -> None:
        handle = run.handle
        generation = _first_generation(response)
        message = getattr(generation, "message", None)
        if _usage.is_cache_hit(message):
            log.debug("paid_hooks: LangChain cache hit, no provider call to record")
            return
        llm_output = getattr(response, "llm_output", None)
        try:
            usage = (_usage.usage_from_message(message)
                     or _usage.usage_from_token_usage(llm_output))
            model, response_id, tier = _usage.response_details(
                message, llm_output, getattr(generation, "generation_info", None))
        except Exception:
            handle.usage_unknown("unreadable_response")
            raise
        streamed = run.streamed or isinstance(generation, (ChatGenerationChunk, GenerationChunk))
        if usage is None:
            handle.usage_unknown(self._no_usage_reason(run, streamed),
                                 response_model=model, response_id=response_id)
        elif usage.input_tokens == 0 and usage.output_tokens > 0:
            # e.g. langchain-anthropic streams take input counts from message_delta only
            # (langchain-ai/langchain#35509): pricing output alone would undercount.
            handle.usage_unknown("input_tokens_not_reported", response_model=model,
                                 response_id=response_id)
        else:
            handle.finish(usage, response_model=model, response_id=response_id,
                          service_tier=tier)

    @staticmethod
    def _no_usage_reason(run: _Run, streamed: bool) -> str:
        if not streamed:
            return "not_reported"
        if run.provider in _OPENAI_PROVIDERS:
            return "stream_usage_not_requested: pass stream_usage=True to ChatOpenAI"
        return "stream_usage_not_reported"

    def on_llm_error(self, error: BaseException, *, run_id: UUID,
                     parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        try:
            run = _take(run_id)
            if run is None or run.handle.done:
                return
            handle = run.handle
            partial = kwargs.get("response")
            message = getattr(_first_generation(partial), "message", None)
            usage = _usage.usage_from_message(message)
            if usage is not None and usage.input_tokens == 0:
                usage = None  # a partial count would undercount the bill
            model = _usage.served_model(message, None, None)
            response_id = _usage.response_id(message, None)
            if isinstance(error, GeneratorExit | asyncio.CancelledError):
                reason = ("stream_closed_early" if isinstance(error, GeneratorExit)
                          else "cancelled")
                if usage is not None:
                    handle.finish(usage, response_model=model, response_id=response_id)
                else:
                    handle.usage_unknown(reason, response_model=model,
                                         response_id=response_id)
            else:
                handle.fail(error, usage=usage, response_model=model, response_id=response_id)
        except Exception:
            log.warning("paid_hooks: could not record a failed LangChain run", exc_info=True)
