"""What the teacher's tokens cost: a price per million input and output tokens, from `--teacher-price IN,OUT`,
from a named entry of the price table (drp/prices.yaml, extended by `DRP_PRICES` or `--prices-file`), or from
the table entry named like the teacher model. Batch mode takes the entry's batch discount off.

A cost is only as known as its tokens (drp.store's usage columns): a call without usage that the teacher's
tokenizer did not count makes its trace's cost unknown (None), and the run's too, never free; the run's cost
says how many traces are unknown.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from drp.errors import UserError
from drp.paths import PACKAGE_DIR

BUILTIN_PRICES = PACKAGE_DIR / "prices.yaml"


@dataclass(frozen=True)
class Price:
    input: float  # per million input tokens
    output: float  # per million output tokens
    currency: str = "USD"
    batch_discount: float = 0.0  # share taken off in batch mode
    name: str | None = None  # the table entry, or None for a price given as IN,OUT

    def __post_init__(self):
        """Prices are finite and not negative, the discount a share (0 to 1): else ValueError, before any use."""
        for what, value in (("input price", self.input), ("output price", self.output)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{what} must be a finite number ≥ 0, not {value!r}")
        discount = self.batch_discount
        if not isinstance(discount, (int, float)) or isinstance(discount, bool) or not 0 <= discount <= 1:
            raise ValueError(f"batch_discount must be a share between 0 and 1, not {discount!r}")

    def cost(self, input_tokens: int | None, output_tokens: int | None, batch: bool = False) -> float | None:
        if input_tokens is None or output_tokens is None:
            return None
        full = (input_tokens * self.input + output_tokens * self.output) / 1_000_000
        return full * (1 - self.batch_discount) if batch else full

    def describe(self, batch: bool = False) -> str:
        label = f"{self.name}: " if self.name else ""
        discount = f", batch −{self.batch_discount:.0%}" if batch and self.batch_discount else ""
        return f"{label}{self.input:g} in / {self.output:g} out {self.currency} per M tokens{discount}"

    def public(self) -> dict:
        return asdict(self)

    @classmethod
    def from_public(cls, data: dict | None) -> Price | None:
        """The price a run stored; None for one that is not a valid price (written by older or other code)."""
        try:
            return cls(**data) if isinstance(data, dict) and data else None
        except (TypeError, ValueError):
            return None


def price_table(prices_file: Path | str | None = None) -> dict[str, Price]:
    """The built-in table, then `DRP_PRICES`, then `prices_file` (later entries win)."""
    import yaml

    table: dict[str, Price] = {}
    for path in (BUILTIN_PRICES, os.environ.get("DRP_PRICES"), prices_file):
        if not path:
            continue
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
            currency = data.get("currency", "USD")
            for name, entry in (data.get("models") or {}).items():
                try:
                    table[str(name)] = Price(
                        float(entry["input"]),
                        float(entry["output"]),
                        str(entry.get("currency", currency)),
                        float(entry.get("batch_discount", 0.0)),
                        str(name),
                    )
                except ValueError as exc:
                    raise ValueError(f"entry {str(name)[:80]!r}: {exc}") from None
        except (OSError, ValueError, TypeError, KeyError, AttributeError, yaml.YAMLError) as exc:
            raise UserError(
                f"price table {path}: {type(exc).__name__}: {exc} (expected `models: {{NAME: "
                "{input: X, output: Y, batch_discount: Z}}`)"
            ) from None
    return table


def resolve_price(spec: str | None, model: str | None, prices_file: Path | str | None = None) -> Price | None:
    """`IN,OUT` (per million tokens), a table entry's name, or (no spec) the entry named like the model."""
    if spec:
        if "," in spec:
            try:
                given, taken = (float(part) for part in spec.split(","))
                return Price(given, taken)
            except ValueError as exc:
                reason = str(exc) if "must be" in str(exc) else "IN,OUT (per million tokens) or a name"
                raise UserError(f"--teacher-price wants {reason}, got {spec!r}") from None
        table = price_table(prices_file)
        if spec not in table:
            raise UserError(
                f"no price named {spec!r}; known: {', '.join(sorted(table))} (add yours with --prices-file)"
            )
        return table[spec]
    return price_table(prices_file).get(model or "")


def format_cost(value: float | None, currency: str = "USD") -> str:
    if value is None:
        return "unknown"
    symbol = "$" if currency == "USD" else f"{currency} "
    return f"{symbol}{value:,.4f}" if value < 1 else f"{symbol}{value:,.2f}"


def run_price(config: dict | None) -> tuple[Price | None, bool]:
    """The price a run was started with (its config), and whether it ran in batch mode."""
    config = config if isinstance(config, dict) else {}
    options = config.get("options") or {}
    return Price.from_public(config.get("price")), options.get("teacher_mode") == "batch"


def run_cost(totals: dict | None, price: Price | None, batch: bool) -> dict:
    """Cost of a run from its teacher token totals (drp.store.RunStore.teacher_totals): what it spent (`total`;
    replies reused from other runs cost nothing) and what reusing them saved (`saved`)."""
    totals = totals or {}
    traces = totals.get("traces") or 0
    total = price.cost(totals.get("input", 0), totals.get("output", 0), batch) if price else None
    # What the calls answered from other runs' replies (--reuse) would have cost here: saved, not spent.
    saved = None
    if price is not None:
        saved = (
            price.cost(totals.get("reused_input", 0), totals.get("reused_output", 0), batch)
            if totals.get("reused_calls")
            else 0.0
        )
    return {
        "saved": saved,
        "price": price.public() if price else None,
        "batch": batch,
        "described": price.describe(batch) if price else None,
        "total": total,
        "per_trace": total / traces if total is not None and traces else None,
        "unknown_traces": totals.get("unknown_traces") or 0,
        "currency": price.currency if price else None,
    }
