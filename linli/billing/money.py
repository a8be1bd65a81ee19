"""Money as integer cents: formatting, parsing and the amount in Chinese capitals (大写金额)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import cn2an  # type: ignore[import-untyped]

MAX_CENTS = 10**12  # ten billion yuan: anything above is a typo, not a payment


def round_cents(value: Decimal) -> int:
    """Round a fractional number of cents half-up to a whole cent."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def yuan(cents: int) -> str:
    """``123456`` → ``"1,234.56"``."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d}"


def parse_yuan(text: str) -> int:
    """``"1234.56"`` → ``123456``; at most two decimals, no sign games."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation as exc:
        raise ValueError("not an amount") from exc
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise ValueError("at most two decimals")
    return int(value * 100)


def capitals(cents: int) -> str:
    """The amount in Chinese capitals as written on receipts: 壹仟贰佰叁拾肆元伍角陆分.

    Whole amounts end in 整 (壹佰元整); a missing 角 before 分 is written 零 (壹佰元零伍分).
    """
    if cents < 0:
        return "负" + capitals(-cents)
    whole, part = divmod(cents, 100)
    text: str = cn2an.an2cn(f"{whole}.{part:02d}", "rmb")
    if part and part % 10 == 0 and not text.endswith("整"):
        text += "整"  # 壹佰元壹角 → 壹佰元壹角整, as banks write it
    return text
