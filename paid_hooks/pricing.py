"""Turning a normalised :class:`~paid_hooks.model.Usage` into exact decimal money.

Three sources answer, in this order, through the ``price_call`` hook (first answer wins):

1. user plugins implementing ``price_call`` (negotiated rates, private models);
2. price overrides loaded from a TOML file (:func:`load_price_overrides`);
3. the bundled genai-prices snapshot (never fetched over the network; imported lazily).

Pricing runs on the pipeline worker thread only. A model nobody prices is ``unpriced``
with a reason, never zero.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import logging
import threading
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from paid_hooks.hookspecs import hookimpl
from paid_hooks.model import AICall, Price, Unpriced, Usage

__all__ = [
    "GENAI_PRICES_PROVIDER_IDS",
    "BuiltinPricing",
    "PriceOverride",
    "PriceOverrides",
    "PriceSource",
    "load_price_overrides",
]

log = logging.getLogger("paid_hooks.pricing")

MTOK = Decimal(1_000_000)

GENAI_PRICES_PROVIDER_IDS: Mapping[str, str] = {
    "openai": "openai",
    "azure.ai.openai": "azure",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "groq": "groq",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "cohere": "cohere",
    "perplexity": "perplexity",
    "moonshot_ai": "moonshotai",
    "openrouter": "openrouter",
}
"""OpenTelemetry ``gen_ai.provider.name`` -> genai-prices ``provider_id``."""

_TOKEN_FIELDS: Mapping[str, str] = {
    "input_tokens": "input_tokens",
    "output_tokens": "output_tokens",
    "cache_read_tokens": "cache_read_tokens",
    "reasoning_tokens": "output_reasoning_tokens",
    "input_audio_tokens": "input_audio_tokens",
    "output_audio_tokens": "output_audio_tokens",
    "input_image_tokens": "input_image_tokens",
    "output_image_tokens": "output_image_tokens",
}


class PriceSource(Protocol):
    """Anything that can price a call: return a Price, an Unpriced reason, or None."""

    def price_call(self, call: AICall) -> Price | Unpriced | None: ...


def _genai_usage_kwargs(usage: Usage) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for ours, theirs in _TOKEN_FIELDS.items():
        value = getattr(usage, ours)
        if value is not None:
            kwargs[theirs] = value
    writes = [usage.cache_write_5m_tokens, usage.cache_write_1h_tokens]
    if usage.cache_write_tokens is not None or any(w is not None for w in writes):
        kwargs["cache_write_tokens"] = (
            usage.cache_write_tokens
            if usage.cache_write_tokens is not None
            else sum(w or 0 for w in writes)
        )
        if usage.cache_write_5m_tokens is not None:
            kwargs["cache_write_5m_tokens"] = usage.cache_write_5m_tokens
        if usage.cache_write_1h_tokens is not None:
            kwargs["cache_write_1h_tokens"] = usage.cache_write_1h_tokens
    kwargs.update(usage.units)
    return kwargs


class BuiltinPricing:
    """The bundled genai-prices snapshot, answering last (``trylast``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: Any = None
        self._known_units: frozenset[str] = frozenset()
        self.label = "genai-prices"

    def load(self) -> Any:
        """Import genai-prices (once); returns the module."""
        if self._module is None:
            with self._lock:
                if self._module is None:
                    import genai_prices
                    import genai_prices.types as gp_types

                    self._known_units = frozenset(gp_types._reported_usage_keys())
                    self.label = f"genai-prices {importlib.metadata.version('genai-prices')}"
                    self._module = genai_prices
        return self._module

    @hookimpl(trylast=True)
    def price_call(self, call: AICall) -> Price | Unpriced | None:
        assert call.usage is not None
        gp = self.load()
        model = call.model
        if not model:
            return Unpriced("no_model")
        provider_id = GENAI_PRICES_PROVIDER_IDS.get(call.provider)
        kwargs = _genai_usage_kwargs(call.usage)
        unknown_units = sorted(set(kwargs) - self._known_units)
        if unknown_units:
            return Unpriced(f"no_price_for_units:{','.join(unknown_units)}")
        context: dict[str, str] = {}
        if call.batch:
            context["processing"] = "batch"
        elif call.service_tier in ("flex", "priority"):
            context["service_tier"] = call.service_tier
        timestamp = datetime.fromtimestamp(call.start_time_ns / 1e9, tz=UTC)
        try:
            result = gp.calc_price(
                gp.Usage(**kwargs),
                model,
                provider_id=provider_id,
                genai_request_timestamp=timestamp,
                price_context=context or None,
            )
        except LookupError:
            return Unpriced("unknown_model")
        except (ValueError, TypeError) as exc:
            return Unpriced(f"price_error:{exc}")
        return Price(amount=Decimal(result.total_price), price_source=self.label)


@dataclass(frozen=True)
class PriceOverride:
    """One negotiated or private price, per million tokens and per unit (exact decimals)."""

    model: str
    """Exact model name or a shell-style pattern (``my-ft-*``)."""
    provider: str | None = None
    input_mtok: Decimal = Decimal(0)
    output_mtok: Decimal = Decimal(0)
    cache_read_mtok: Decimal | None = None
    cache_write_mtok: Decimal | None = None
    units: Mapping[str, Decimal] = field(default_factory=dict)

    def matches(self, call: AICall) -> bool:
        if self.provider is not None and self.provider != call.provider:
            return False
        model = call.model or ""
        return model == self.model or fnmatch.fnmatchcase(model, self.model)

    def price(self, usage: Usage) -> Price | Unpriced:
        cache_read = usage.cache_read_tokens or 0
        cache_write = usage.cache_write_tokens or (
            (usage.cache_write_5m_tokens or 0) + (usage.cache_write_1h_tokens or 0)
        )
        plain_input = usage.input_tokens - cache_read - cache_write
        read_rate = self.input_mtok if self.cache_read_mtok is None else self.cache_read_mtok
        write_rate = self.input_mtok if self.cache_write_mtok is None else self.cache_write_mtok
        amount = (
            Decimal(plain_input) * self.input_mtok
            + Decimal(cache_read) * read_rate
            + Decimal(cache_write) * write_rate
            + Decimal(usage.output_tokens) * self.output_mtok
        ) / MTOK
        for unit, count in usage.units.items():
            if unit not in self.units:
                return Unpriced(f"no_price_for_units:{unit}")
            amount += Decimal(count) * self.units[unit]
        return Price(amount=amount, price_source="overrides")


class PriceOverrides:
    """Price overrides, consulted before the bundled prices. Thread-safe to replace."""

    def __init__(self) -> None:
        self._entries: tuple[PriceOverride, ...] = ()

    def set(self, entries: list[PriceOverride]) -> None:
        self._entries = tuple(entries)

    def clear(self) -> None:
        self._entries = ()

    @property
    def entries(self) -> tuple[PriceOverride, ...]:
        return self._entries

    @hookimpl
    def price_call(self, call: AICall) -> Price | Unpriced | None:
        assert call.usage is not None
        for entry in self._entries:
            if entry.matches(call):
                return entry.price(call.usage)
        return None


OVERRIDES = PriceOverrides()


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, float):
        raise ValueError(f"{where}: write prices as strings or integers, not floats ({value!r})")
    try:
        return Decimal(str(value))
    except Exception as exc:
        raise ValueError(f"{where}: not a decimal number: {value!r}") from exc


def load_price_overrides(path: str | Path) -> list[PriceOverride]:
    """Read price overrides from a TOML file and make them active. Returns the entries.

    Format (prices are per million tokens, units per unit; use strings for exactness)::

        [[price]]
        model = "ft:gpt-4o-mini:acme*"   # exact name or shell pattern
        provider = "openai"              # optional: gen_ai.provider.name
        input_mtok = "0.30"
        output_mtok = "1.20"
        cache_read_mtok = "0.15"         # optional, defaults to input_mtok
        cache_write_mtok = "0.30"        # optional, defaults to input_mtok
        units = { images = "0.04" }      # optional, per unit

    Raises :class:`ValueError` naming the entry and field on a malformed file.
    """
    with open(path, "rb") as fh:
        doc = tomllib.load(fh)
    entries: list[PriceOverride] = []
    for index, raw in enumerate(doc.get("price", [])):
        where = f"{path}: price[{index}]"
        if "model" not in raw:
            raise ValueError(f"{where}: 'model' is required")
        entries.append(
            PriceOverride(
                model=str(raw["model"]),
                provider=raw.get("provider"),
                input_mtok=_decimal(raw.get("input_mtok", 0), f"{where}.input_mtok"),
                output_mtok=_decimal(raw.get("output_mtok", 0), f"{where}.output_mtok"),
                cache_read_mtok=(
                    _decimal(raw["cache_read_mtok"], f"{where}.cache_read_mtok")
                    if "cache_read_mtok" in raw else None
                ),
                cache_write_mtok=(
                    _decimal(raw["cache_write_mtok"], f"{where}.cache_write_mtok")
                    if "cache_write_mtok" in raw else None
                ),
                units={k: _decimal(v, f"{where}.units.{k}")
                       for k, v in raw.get("units", {}).items()},
            )
        )
    OVERRIDES.set(entries)
    return entries
