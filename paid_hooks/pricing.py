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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol, cast

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


_TOKEN_KEYS = frozenset(_TOKEN_FIELDS.values()) | {
    "cache_write_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens"}
"""Every genai-prices key :func:`_genai_usage_kwargs` can produce from token counts."""


class PriceSource(Protocol):
    """Anything that can price a call: return a Price, an Unpriced reason, or None."""

    def price_call(self, call: AICall) -> Price | Unpriced | None: ...


def _genai_usage_kwargs(usage: Usage) -> dict[str, Any]:
    """genai-prices ``Usage`` keyword arguments: the reported counts, under its names."""
    kwargs: dict[str, Any] = {"input_tokens": usage.input_tokens,
                              "output_tokens": usage.output_tokens}
    if usage.cache_read_tokens is not None:
        kwargs["cache_read_tokens"] = usage.cache_read_tokens
    if usage.reasoning_tokens is not None:
        kwargs["output_reasoning_tokens"] = usage.reasoning_tokens
    if usage.input_audio_tokens is not None:
        kwargs["input_audio_tokens"] = usage.input_audio_tokens
    if usage.output_audio_tokens is not None:
        kwargs["output_audio_tokens"] = usage.output_audio_tokens
    if usage.input_image_tokens is not None:
        kwargs["input_image_tokens"] = usage.input_image_tokens
    if usage.output_image_tokens is not None:
        kwargs["output_image_tokens"] = usage.output_image_tokens
    write_5m, write_1h = usage.cache_write_5m_tokens, usage.cache_write_1h_tokens
    if usage.cache_write_tokens is not None or write_5m is not None or write_1h is not None:
        kwargs["cache_write_tokens"] = (
            usage.cache_write_tokens
            if usage.cache_write_tokens is not None
            else (write_5m or 0) + (write_1h or 0)
        )
        if write_5m is not None:
            kwargs["cache_write_5m_tokens"] = write_5m
        if write_1h is not None:
            kwargs["cache_write_1h_tokens"] = write_1h
    if usage.units:
        kwargs.update(usage.units)
    return kwargs


class BuiltinPricing:
    """The bundled genai-prices snapshot, answering last (``trylast``).

    Most calls are priced by :class:`_FastPrices` (the usage-independent work of
    ``genai_prices.calc_price`` done once per model, price context and day; the same
    Decimal operations, in the same order, per call; tiered prices included). Anything
    it cannot reproduce exactly (time-of-day prices, non-integer counts, errors, another
    genai-prices layout) goes through ``genai_prices.calc_price`` itself.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._module: Any = None
        self._known_units: frozenset[str] = frozenset()
        self._token_keys_known = False
        self._fast: _FastPrices | None = None
        self.label = "genai-prices"

    def load(self) -> Any:
        """Import genai-prices (once); returns the module."""
        if self._module is None:
            with self._lock:
                if self._module is None:
                    import genai_prices
                    import genai_prices.types as gp_types

                    self._known_units = frozenset(gp_types._reported_usage_keys())
                    self._token_keys_known = self._known_units >= _TOKEN_KEYS
                    self.label = f"genai-prices {importlib.metadata.version('genai-prices')}"
                    try:
                        self._fast = _FastPrices(genai_prices)
                    except Exception:  # another genai-prices layout: always the slow path
                        log.debug("paid_hooks: genai-prices fast path unavailable",
                                  exc_info=True)
                        self._fast = None
                    self._module = genai_prices
        return self._module

    @hookimpl(trylast=True)
    def price_call(self, call: AICall) -> Price | Unpriced | None:
        usage = call.usage
        assert usage is not None
        gp = self._module if self._module is not None else self.load()
        model = call.response_model or call.request_model
        if not model:
            return Unpriced("no_model")
        provider_id = GENAI_PRICES_PROVIDER_IDS.get(call.provider)
        kwargs = _genai_usage_kwargs(usage)
        if usage.units or not self._token_keys_known:
            unknown_units = sorted(set(kwargs) - self._known_units)
            if unknown_units:
                return Unpriced(f"no_price_for_units:{','.join(unknown_units)}")
        if call.batch:
            context_key: tuple[tuple[str, str], ...] = _BATCH
        elif call.service_tier == "flex" or call.service_tier == "priority":
            context_key = (("service_tier", call.service_tier),)
        else:
            context_key = ()
        fast = self._fast
        if fast is not None:
            try:
                total = fast.total(kwargs, model, provider_id, context_key, call.start_time_ns)
            except Exception:
                log.debug("paid_hooks: fast pricing failed; using calc_price", exc_info=True)
                total = None
            if type(total) is Decimal:  # (positional: a quarter cheaper than keywords)
                return Price(total, "USD", "local", self.label)
            if total is _UNKNOWN_MODEL:
                return Unpriced("unknown_model")
        timestamp = datetime.fromtimestamp(call.start_time_ns / 1e9, tz=UTC)
        return self._price_slow(gp, kwargs, model, provider_id, dict(context_key), timestamp)

    def _price_slow(self, gp: Any, kwargs: dict[str, Any], model: str, provider_id: str | None,
                    context: dict[str, str], timestamp: datetime) -> Price | Unpriced:
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


_BATCH = (("processing", "batch"),)

_NS_PER_DAY = 86_400 * 10**9

_UNKNOWN_MODEL = object()
""":meth:`_FastPrices.total`: genai-prices has no such model (``calc_price`` would raise
``LookupError``)."""

_SLOW = object()
"""A cached plan that says: use ``calc_price`` for this model, context and day."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything about one model's price on one day that does not depend on the usage.

    ``entries``: ``(usage_key, base price, per, tiers)`` in the order genai-prices adds them
    up; ``tiers`` (``(start, price)``, highest start first) is empty for a flat price;
    ``leaves``: ``(usage_key, priced descendant keys)`` in genai-prices' leaf order, so
    that a count is what is left after its more specific priced counts are taken out.
    """

    entries: tuple[tuple[str, Decimal, int, tuple[tuple[int, Decimal], ...]], ...]
    leaves: tuple[tuple[str, tuple[str, ...]], ...]
    tiered: bool
    leaf_keys: frozenset[str]
    compiled: dict[tuple[str, ...], Any]
    """Per reported keys (in order): the plan as one function of the counts
    (:func:`_compile`), or :data:`_BY_SIGNS` when a priced count is not reported."""
    by_signs: dict[tuple[tuple[str, ...], tuple[bool, ...]], Any]
    """Per (reported keys, which are positive) with a priced count not reported: the
    function, or ``None`` when genai-prices would not read that count as 0."""


class _FastPrices:
    """``genai_prices.calc_price`` with its usage-independent work cached (worker thread).

    Per call it does what ``ModelPrice.calc_price`` does with the usage: the leaf counts
    (``decompose.compute_leaf_values``, integer arithmetic), then the arithmetic of
    genai-prices' ``calc_unit_price`` for each price (the tier crossed by the input
    tokens, else the base price; ``price * count / per``), added in the same order from
    ``Decimal(0)``, so the result is the same Decimal (a hypothesis test checks it). It
    returns ``None`` (use ``calc_price``) for anything else: time-of-day prices,
    non-integer or negative counts, a negative leaf, an unreported count that genai-prices
    would refuse to infer, invalid price data.
    The caches follow genai-prices' current snapshot (``set_custom_snapshot``).
    """

    _MAX_ENTRIES = 65_536

    def __init__(self, gp: Any) -> None:
        from genai_prices import data_snapshot, decompose, types, validation
        from genai_prices.units import _get_registry

        self._get_snapshot = data_snapshot.get_snapshot
        self._registry = _get_registry()
        self._collect = types._collect_resolved_model_prices
        self._validate = validation.validate_priced_units
        self._is_descendant = decompose.is_descendant_or_self
        self._tiered_type = types.TieredPrices
        self._model_price_type = types.ModelPrice
        self._time_of_day = types.TimeOfDateConstraint
        self._usage_type = gp.Usage
        self._snapshot: Any = None
        self._models: dict[tuple[str | None, str], Any] = {}
        self._plans: dict[tuple[Any, ...], _Plan | object] = {}
        self._time_dependent: dict[int, bool] = {}

    def total(self, kwargs: dict[str, Any], model_ref: str, provider_id: str | None,
              context_key: tuple[tuple[str, str], ...],
              start_time_ns: int) -> Decimal | object | None:
        """The total price, :data:`_UNKNOWN_MODEL`, or ``None`` (ask ``calc_price``).

        ``context_key`` is the genai-prices price context as ``(key, value)`` pairs;
        prices are looked up for the UTC day of ``start_time_ns``.
        """
        for value in kwargs.values():
            if type(value) is not int or value < 0:
                return None
        snapshot = self._get_snapshot()
        if snapshot is not self._snapshot:
            self._models.clear()
            self._plans.clear()
            self._time_dependent.clear()
            self._snapshot = snapshot
        plan_key = (provider_id, model_ref, context_key, start_time_ns // _NS_PER_DAY)
        plan = self._plans.get(plan_key)
        if plan is None:
            if len(self._plans) > self._MAX_ENTRIES or len(self._models) > self._MAX_ENTRIES:
                self._plans.clear()
                self._models.clear()
            plan = self._new_plan(snapshot, model_ref, provider_id, context_key, start_time_ns)
            self._plans[plan_key] = plan
        if type(plan) is _Plan:
            # _apply's lookups written out, for a function it made already (a Python
            # call fewer, ~0.1 µs); anything else (None included) is left to _apply.
            keys = tuple(kwargs)
            compiled = plan.compiled.get(keys)
            if compiled is _BY_SIGNS:
                compiled = plan.by_signs.get((keys, tuple(map(bool, kwargs.values()))))
            if compiled is not None:
                return cast(_Priced, compiled)(kwargs)
            return self._apply(plan, kwargs)
        return _UNKNOWN_MODEL if plan is _UNKNOWN_MODEL else None

    def _new_plan(self, snapshot: Any, model_ref: str, provider_id: str | None,
                  context_key: tuple[tuple[str, str], ...],
                  start_time_ns: int) -> _Plan | object:
        """The plan of one model, price context and UTC day (or a marker: ask calc_price,
        or unknown model). Prices that depend on the time of day are never planned."""
        model_key = (provider_id, model_ref)
        found = self._models.get(model_key)
        if found is None:
            try:
                found = snapshot.find_provider_model(model_ref, None, provider_id, None)
            except LookupError:
                found = _UNKNOWN_MODEL
            self._models[model_key] = found
        if found is _UNKNOWN_MODEL:
            return _UNKNOWN_MODEL
        provider, model = cast(tuple[Any, Any], found)
        if self._depends_on_time_of_day(model):
            return _SLOW
        # genai-prices' date constraints compare dates only, so the start of the call's
        # UTC day chooses the same prices as any moment of that day.
        day_start = start_time_ns // _NS_PER_DAY * _NS_PER_DAY
        timestamp = datetime.fromtimestamp(day_start / 1e9, tz=UTC)
        return self._plan(provider, model, dict(context_key), timestamp)

    def _depends_on_time_of_day(self, model: Any) -> bool:
        key = id(model)
        answer = self._time_dependent.get(key)
        if answer is None:
            constraints: list[Any] = []
            if not isinstance(model.prices, self._model_price_type):
                constraints.extend(c.constraint for c in model.prices)
            constraints.extend(v.constraint for v in model.price_variants or ())
            answer = any(isinstance(c, self._time_of_day) for c in constraints)
            self._time_dependent[key] = answer
        return answer

    def _plan(self, provider: Any, model: Any, context: dict[str, str],
              timestamp: datetime) -> _Plan | object:
        """What ``ModelInfo.calc_price`` and ``ModelPrice.calc_price`` decide before usage."""
        if provider.id == "groq" and model.id in ("whisper-large-v3", "whisper-large-v3-turbo"):
            return _SLOW  # genai-prices bills a minimum duration for these
        try:
            if context and not any(model is m for m in provider.models):
                model_price = model.get_prices(timestamp)
            else:
                model_price = model.get_prices(timestamp, context or None)
            registry = self._registry
            for key, value in model_price.__dict__.items():
                if (not key.startswith("_") and value is not None
                        and key not in registry._all_price_keys):
                    return _SLOW  # genai-prices warns and skips it: let it
            resolved = self._collect(model_price, registry)
            self._validate(tuple(unit for unit, _ in resolved), registry)
        except Exception:
            return _SLOW
        priced = {unit.usage_key: unit for unit, _ in resolved if unit.usage_key != "requests"}
        order = sorted(priced.values(), key=lambda unit: (-len(unit.dimensions), unit.usage_key))
        leaves: list[tuple[str, tuple[str, ...]]] = []
        done: set[str] = set()
        for unit in order:
            below = tuple(d.usage_key for d in order
                          if d is not unit and self._is_descendant(unit, d))
            if any(key not in done for key in below):
                return _SLOW  # genai-prices would fail on this data
            leaves.append((unit.usage_key, below))
            done.add(unit.usage_key)
        return _Plan(
            entries=tuple((unit.usage_key, *self._base_and_tiers(price, unit.per))
                          for unit, price in resolved),
            leaves=tuple(leaves),
            tiered=any(isinstance(price, self._tiered_type) for _, price in resolved),
            leaf_keys=frozenset(priced),
            compiled={},
            by_signs={},
        )

    def _base_and_tiers(self, price: Any, per: int
                        ) -> tuple[Decimal, int, tuple[tuple[int, Decimal], ...]]:
        """``(base price, per, tiers)`` of one resolved price (tiers highest first)."""
        if isinstance(price, self._tiered_type):
            return price.base, per, tuple((t.start, t.price) for t in reversed(price.tiers))
        return price, per, ()

    def _unreported_ok(self, plan: _Plan, kwargs: dict[str, Any]) -> bool:
        """Whether genai-prices reads the priced counts missing from ``kwargs`` as 0.

        It infers an unreported count from the positive reported ones: 0, or a
        ValueError. Asked once per pattern, with a sample of that pattern."""
        sample = self._usage_type(**{k: (1 if v else 0) for k, v in kwargs.items()})
        for leaf, _ in plan.leaves:
            if leaf not in kwargs:
                try:
                    getattr(sample, leaf)
                except ValueError:
                    return False
        return True

    def _apply(self, plan: _Plan, kwargs: dict[str, Any]) -> Decimal | None:
        """The total of ``kwargs`` (non-negative ints) under ``plan``; ``None``: ask
        ``calc_price`` (it refuses the usage, or infers an unreported count otherwise).

        The plan's function for the reported keys is made once (:func:`_compile`); when
        some priced count is not reported, whether it may be read as 0 depends on which
        reported counts are positive, so that is looked up per sign pattern as well."""
        keys = tuple(kwargs)
        compiled = plan.compiled.get(keys)
        if compiled is None:
            if len(plan.compiled) >= self._MAX_ENTRIES:
                plan.compiled.clear()
            compiled = (_compile(plan, keys) if plan.leaf_keys <= kwargs.keys()
                        else _BY_SIGNS)
            plan.compiled[keys] = compiled
        if compiled is _BY_SIGNS:
            signs = (keys, tuple(map(bool, kwargs.values())))
            by_signs = plan.by_signs.get(signs, _BY_SIGNS)
            if by_signs is _BY_SIGNS:
                if len(plan.by_signs) >= self._MAX_ENTRIES:
                    plan.by_signs.clear()
                by_signs = _compile(plan, keys) if self._unreported_ok(plan, kwargs) else None
                plan.by_signs[signs] = by_signs
            if by_signs is None:
                return None
            compiled = by_signs
        return cast(_Priced, compiled)(kwargs)


_BY_SIGNS: Any = object()
"""In :attr:`_Plan.compiled`: the function also depends on the reported counts' signs."""

_Priced = Callable[[dict[str, Any]], "Decimal | None"]
"""A compiled plan: genai-prices usage counts -> total, or ``None`` (ask ``calc_price``)."""


def _compile(plan: _Plan, reported: tuple[str, ...]) -> _Priced:
    """``plan`` as one function of genai-prices usage counts reporting ``reported`` keys.

    What ``ModelPrice.calc_price`` does with the usage, in its order: each leaf count is
    its reported count (0 when not reported) less its priced descendants' leaf counts,
    ``None`` when one is negative (genai-prices raises: let it say so); then ``total +=
    price * Decimal(count) / per`` from ``Decimal(0)`` (``calc_unit_price``'s own
    arithmetic; a tiered price is the highest tier crossed by the input tokens, else the
    base price). Written out once instead of interpreted per call: about a third of the
    work. Only identifiers made here and the plan's keys (as literals, via ``repr``)
    enter the source; prices are bound as values.
    """
    values: dict[str, Any] = {"Decimal": Decimal}
    lines = ["def priced(kwargs):"]
    leaf_names: dict[str, str] = {}
    zero: set[str] = set()  # leaves that are 0 whatever the usage: not reported, no below
    for index, (key, below) in enumerate(plan.leaves):
        if key not in reported and not below:
            zero.add(key)
            continue
        name = f"c{index}"
        less = "".join(f" - {leaf_names[other]}" for other in below if other not in zero)
        count = f"kwargs[{key!r}]" if key in reported else "0"
        lines.append(f"    {name} = {count}{less}")
        if below:
            lines.append(f"    if {name} < 0: return None")
        leaf_names[key] = name
    lines.append("    total_input = kwargs['input_tokens']")
    lines.append("    total = Decimal(0)")
    for index, (key, price, per, tiers) in enumerate(plan.entries):
        if not tiers and (key == "requests" or key in zero):  # a term known now
            values[f"k{index}"] = price * Decimal(1 if key == "requests" else 0) / per
            lines.append(f"    total += k{index}")
            continue
        # per as a Decimal: the division converts an int to this very Decimal per call
        values[f"p{index}"], values[f"per{index}"] = price, Decimal(per)
        if tiers:
            lines.append(f"    price = p{index}")
            for tier, (start, tier_price) in enumerate(tiers):
                values[f"s{index}_{tier}"], values[f"p{index}_{tier}"] = start, tier_price
                keyword = "if" if tier == 0 else "elif"
                lines.append(f"    {keyword} total_input > s{index}_{tier}: "
                             f"price = p{index}_{tier}")
            price_name = "price"
        else:
            price_name = f"p{index}"
        if key == "requests":
            count = "1"
        elif key in zero:
            count = "0"
        else:
            count = leaf_names[key]
        lines.append(f"    total += {price_name} * Decimal({count}) / per{index}")
    lines.append("    return total")
    exec("\n".join(lines), values)  # the source: identifiers made here, keys as literals
    function: _Priced = values["priced"]
    return function


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
