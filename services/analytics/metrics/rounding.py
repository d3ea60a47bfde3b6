"""Exact rounding of a ratio of two integers, as the metric definitions ask.

A figure is ``numerator ÷ denominator`` of two integer expressions into which the caller has
folded every scale (× 100 for a percentage, ÷ 365.25 as × 4 ÷ 1461 for years, hours and days
in units of 1/10,000). The rounding is done in 128-bit integers, so a value exactly on a
``.x5`` boundary rounds the same way every time, which a float division cannot promise
(100 × 1 ÷ 8 is 12.5 exactly, but e.g. 10.1 + 10.4 is not 20.5 in floats).

A zero (or null) denominator gives null, never 0 or an error. Numerators are never negative
for valid data; integer division floors.
"""

from __future__ import annotations

import polars as pl

__all__ = ["half_up_1", "truncate_0"]


def _i128(expr: pl.Expr) -> pl.Expr:
    return expr.cast(pl.Int128)


def half_up_1(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator ÷ denominator to 1 decimal, half up (四捨五入 at the 2nd decimal), Float64."""
    num, den = _i128(numerator), _i128(denominator)
    tenths = (num * 20 + den) // (den * 2)
    # round(1) gives the float nearest to tenths / 10 (polars may divide by multiplying by 0.1)
    return pl.when(den != 0).then((tenths.cast(pl.Float64) / 10).round(1))


def truncate_0(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator ÷ denominator truncated to an integer (切り捨て), Float64."""
    num, den = _i128(numerator), _i128(denominator)
    return pl.when(den != 0).then((num // den).cast(pl.Float64))
