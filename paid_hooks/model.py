"""The common cost-span model: one framework-neutral record per AI call.

Every plugin, whatever framework or provider it reads, describes a model call with the
types in this module and hands it to the recorder (:func:`paid_hooks.start_call`).

Token semantics follow the OpenTelemetry GenAI semantic conventions, and they are the
same for every provider once a plugin has normalised them:

* ``input_tokens`` is ALL input, cached and cache-written tokens INCLUDED;
* ``output_tokens`` is ALL output, reasoning tokens INCLUDED;
* ``cache_read_tokens``, ``cache_write_tokens`` (and its 5m/1h split) are subsets of input;
* ``reasoning_tokens`` is a subset of output.

``None`` means "not reported", ``0`` means "reported as zero": the two are never mixed.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeVar

__all__ = [
    "AICall",
    "CallStatus",
    "CostStatus",
    "Price",
    "PricedCall",
    "SignalRecord",
    "Unpriced",
    "Usage",
]

_EMPTY: Mapping[str, int | Decimal] = MappingProxyType({})
_T = TypeVar("_T", bound=type)


_SET_CLASS = object.__dict__["__class__"].__set__
_SWAP_FROM_FIELDS = 6
"""Records with at least this many fields are filled through a twin class (see
:func:`_quick_init`); below it, the two class changes cost more than they save."""
TWINS: dict[type, type] = {}
"""Record class -> its twin (see :func:`_quick_init`), for a hot path that builds a record
itself: ``record = twin(); record.<field> = ...`` for EVERY field, then
``record.__class__ = cls``. Internal to paid-hooks."""


def _quick_init(cls: _T) -> _T:
    """Give a frozen, slotted dataclass a faster ``__init__``: the same signature, defaults
    and result as the generated one, at a third to a half of its cost (the generated one
    calls ``object.__setattr__`` per field, which looks the attribute up by name). These
    records are built on every AI call.

    How it stores the fields: a record with many fields is first made an instance of a
    plain slotted twin class (the same ``__slots__``, hence the same memory layout, but no
    frozen ``__setattr__``), filled with ordinary attribute stores (the interpreter's
    fastest: a slot write), then made a ``cls`` again; two class changes cost about as much
    as five field stores through descriptors. A small record (and any instance of a
    subclass, whose layout may differ) stores each field through its slot's own descriptor.

    Everything else is the dataclass's own: assignment still raises
    ``FrozenInstanceError``; equality, hashing, ``repr``, ``fields`` and
    ``dataclasses.replace`` are unchanged (the tests hold both ``__init__`` equal).
    """
    names = [each.name for each in fields(cls)]
    twin = type(f"_{cls.__name__}Fields", (), {
        "__slots__": cls.__dict__["__slots__"], "__module__": cls.__module__})
    TWINS[cls] = twin
    namespace: dict[str, Any] = {"_FACTORY": object(), "_cls": cls, "_twin": twin,
                                 "_set_class": _SET_CLASS}
    params: list[str] = []
    body: list[str] = []
    for each in fields(cls):
        name = each.name
        namespace[f"_set_{name}"] = cls.__dict__[name].__set__
        if each.default is not MISSING:
            namespace[f"_default_{name}"] = each.default
            params.append(f"{name}=_default_{name}")
        elif each.default_factory is not MISSING:
            namespace[f"_factory_{name}"] = each.default_factory
            params.append(f"{name}=_FACTORY")
            body.append(f"    if {name} is _FACTORY: {name} = _factory_{name}()")
        else:
            params.append(name)
    slow = [f"_set_{name}(self, {name})" for name in names]
    if len(names) >= _SWAP_FROM_FIELDS:
        body.append("    if self.__class__ is _cls:")
        body.append("        _set_class(self, _twin)")
        body.extend(f"        self.{name} = {name}" for name in names)
        body.append("        self.__class__ = _cls")
        body.append("        return")
    body.extend(f"    {line}" for line in slow)
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body)
    exec(source, namespace)  # the source: field names of our own classes only
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__dict__["__init__"].__doc__
    setattr(cls, "__init__", init)  # noqa: B010 (mypy: no assigning to a method)
    return cls


class CallStatus(enum.StrEnum):
    """How the AI call itself ended."""

    OK = "ok"
    ERROR = "error"


class CostStatus(enum.StrEnum):
    """What the ledger knows of a call's cost. A cost is never silently zero."""

    PRICED = "priced"
    """Usage was reported and a price source priced it."""
    UNPRICED = "unpriced"
    """Usage was reported but no price source knows the model (see ``cost_reason``)."""
    USAGE_UNKNOWN = "usage_unknown"
    """The provider was (probably) billed but the usage never reached us."""
    NO_CHARGE = "no_charge"
    """The call failed and the provider reported no usage: nothing was billed."""


@_quick_init
@dataclass(frozen=True, slots=True)
class Usage:
    """Normalised token and unit counts of one AI call (semantic-convention meaning).

    ``units`` holds any other billable unit under its genai-prices name (for example
    ``web_searches``, ``input_document_pages``, ``audio_seconds``) or a plugin-defined
    name (``images``); units no price source knows leave the call ``unpriced``.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cache_write_5m_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    reasoning_tokens: int | None = None
    input_audio_tokens: int | None = None
    output_audio_tokens: int | None = None
    input_image_tokens: int | None = None
    output_image_tokens: int | None = None
    units: Mapping[str, int | Decimal] = field(default_factory=lambda: _EMPTY)
    estimated: bool = False
    """True when the counts are an estimate (e.g. a tokenizer), not provider-reported."""

    @property
    def total_tokens(self) -> int:
        """Input plus output (subsets are never added again)."""
        return self.input_tokens + self.output_tokens

    def reported_fields(self) -> int:
        """How many counts were reported: used to keep the richest of duplicate records."""
        return len(self.units) + 11 - (
            self.cache_read_tokens, self.cache_write_tokens, self.cache_write_5m_tokens,
            self.cache_write_1h_tokens, self.reasoning_tokens, self.input_audio_tokens,
            self.output_audio_tokens, self.input_image_tokens, self.output_image_tokens,
            self.input_tokens, self.output_tokens).count(None)

    def to_dict(self) -> dict[str, Any]:
        """The reported counts as a JSON-ready dict (``None`` fields left out)."""
        out: dict[str, Any] = {}
        for name in _USAGE_COUNT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.units:
            out["units"] = {k: str(v) if isinstance(v, Decimal) else v
                            for k, v in self.units.items()}
        if self.estimated:
            out["estimated"] = True
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON with sorted keys (the ledger's ``usage_json``)."""
        if self.units or self.estimated:
            return _dumps(self.to_dict())
        parts = []
        for name in _SORTED_COUNT_FIELDS:  # what _dumps writes, without building a dict
            value = getattr(self, name)
            if value is not None:
                if type(value) is not int:
                    return _dumps(self.to_dict())
                parts.append(f'"{name}":{value}')
        return "{" + ",".join(parts) + "}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Usage:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in known}
        if "units" in kwargs:
            kwargs["units"] = MappingProxyType({
                k: Decimal(v) if isinstance(v, str) else v for k, v in kwargs["units"].items()
            })
        return cls(**kwargs)


_USAGE_COUNT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(Usage) if f.name not in ("units", "estimated"))
"""The optional and required token counts of :class:`Usage`, in declaration order."""
_SORTED_COUNT_FIELDS: tuple[str, ...] = tuple(sorted(_USAGE_COUNT_FIELDS))
_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode


@_quick_init
@dataclass(frozen=True, slots=True)
class AICall:
    """One AI provider call, as a plugin saw it. Immutable once recorded.

    ``usage is None`` means the usage was not reported; ``usage_unknown_reason`` then
    says why (``stream_closed_early``, ``not_reported``, ...).
    """

    provider: str
    """OpenTelemetry ``gen_ai.provider.name``: ``openai``, ``anthropic``, ``aws.bedrock``..."""
    operation: str
    """``gen_ai.operation.name``: ``chat``, ``embeddings``, ``generate_content``..."""
    request_model: str | None
    response_model: str | None
    usage: Usage | None
    captured_by: str
    """Name of the plugin that captured the call (``openai``, ``httpx``, ``langchain``)."""
    start_time_ns: int
    end_time_ns: int
    status: CallStatus = CallStatus.OK
    error_type: str | None = None
    usage_unknown_reason: str | None = None
    response_id: str | None = None
    streaming: bool = False
    service_tier: str | None = None
    batch: bool = False
    server_address: str | None = None

    @property
    def model(self) -> str | None:
        """The model to price: the served model when known, else the requested one."""
        return self.response_model or self.request_model

    @property
    def latency_ms(self) -> float:
        return (self.end_time_ns - self.start_time_ns) / 1e6

    def richness(self) -> int:
        """A score that orders duplicate records of one provider response (higher wins)."""
        if self.usage is None:
            return 0
        measured = 0 if self.usage.estimated else 1000
        return measured + self.usage.reported_fields() * 10 + (1 if self.response_model else 0)


@_quick_init
@dataclass(frozen=True, slots=True)
class Price:
    """The cost of one call, in exact decimal money."""

    amount: Decimal
    currency: str = "USD"
    source: str = "local"
    """``gen_ai.usage.cost.source``: ``local`` (computed here) or ``provider``."""
    price_source: str = ""
    """Which price data priced it, e.g. ``genai-prices 0.2.3`` or ``overrides.toml``."""


@dataclass(frozen=True, slots=True)
class Unpriced:
    """A price source's explicit answer that it cannot price a call, with the reason."""

    reason: str


@_quick_init
@dataclass(frozen=True, slots=True)
class PricedCall:
    """An :class:`AICall` with its attribution and its cost status, as the ledger stores it."""

    call: AICall
    trace_id: int
    span_id: int
    external_customer_id: str | None
    external_agent_id: str | None
    cost_status: CostStatus
    price: Price | None = None
    cost_reason: str | None = None


@_quick_init
@dataclass(frozen=True, slots=True)
class SignalRecord:
    """One business event ("signal") recorded in a trace."""

    event_name: str
    external_customer_id: str
    external_agent_id: str
    trace_id: int
    idempotency_key: str
    enable_cost_tracing: bool
    timestamp_ns: int
    data_json: str | None = None
    cost_tracing_rejected: bool = False
    rejection_reason: str | None = None
    span_id: int = 0
