"""Privacy suppression of small cells in metric results (ISO 30414 minimum group size).

A metric result frame has one row per cell: ``metric``, ``period``, ``company`` (null: the
consolidated group), ``group_by`` (the breakdown dimension; null: the total of that company),
``group`` (the dimension value), ``value`` and ``n`` (how many people the cell describes).
:func:`suppress_small_cells` adds ``suppressed`` and nulls ``value``, ``n`` and the ``hide``
columns of every suppressed cell. The rules (also in docs/analytics.md, "Privacy suppression"):

Primary
    A breakdown cell (``group_by`` not null) with ``0 < n < min_group_size`` is suppressed, and
    so is one whose ``n`` is null (an unknown size cannot be shown as safe). A cell with
    ``n == 0`` describes nobody, reveals nothing about a person and is shown. Totals
    (``group_by`` null) are never suppressed for their own size: the caller decides, and
    company-level legal disclosure figures must not be passed here at all.

Complementary, along a line
    A *line* is a set of cells that add up (counts) or average with weights ``n`` (ratios) to a
    known margin. Two kinds of lines are protected:

    * siblings: the cells sharing (metric, period, company, group_by), whose margin is the
      total row (same metric, period, company; ``group_by`` null);
    * companies: the per-company breakdown cells sharing (metric, period, group_by, group),
      whose margin is the consolidated cell (``company`` null), when the frame has that
      consolidated cell (consolidated Sales minus the other companies' Sales would otherwise
      give a small company's Sales). Totals across companies are not such a line: like any
      total, a company total describing few people is the caller's decision.

    A line is safe when it has no hidden cell, or at least two hidden cells that together
    describe at least ``min_group_size`` people: subtracting the visible cells from the margin
    then gives only the combined value of a group no smaller than a shown cell. Two primary
    cells of 1 person each are *not* safe (each of the two people could subtract their own
    value and learn the other's), so such a line also gets a complement. An unsafe line hides
    its smallest visible cell with ``n > 0`` (ties: ``group`` for siblings, ``company`` for
    companies, nulls last, then input order); a cell with ``n == 0`` adds nothing to hide
    behind and is never a complement. One complement always suffices, as it has
    ``n >= min_group_size`` itself.

Margin
    When an unsafe line has no visible cell with ``n > 0`` left, every person of the line is
    in a hidden cell, so its margin itself describes the hidden group: the margin row (the
    total, or the consolidated cell) is suppressed too. A hidden margin must not be rebuilt as
    the sum of another of its lines (the company's gender breakdown, when the department
    breakdown hid the total): every line of a hidden margin hides at least one cell with
    people, and then, by the rule above, at least two. A total that is not in the frame
    cannot be suppressed here: a caller that shows totals elsewhere must not show a total
    describing fewer than ``min_group_size`` people next to a breakdown (nor the consolidated
    total and the other companies' totals, which give it by subtraction).

The rules are applied together, pass after pass, until nothing changes (a complement along
the company line can make a sibling line unsafe and the other way round); each pass is a
few vectorised window expressions over the whole frame (100,000 cells take about 0.1 s). A
hidden margin never counts as protection for its own line, since it may be rebuilt through
other lines. Together this is the usual line-by-line heuristic of statistical disclosure
control, checked by an attacker who solves every line with one unknown until nothing more
comes out; it does not solve the linear programme that dedicated tools (tau-ARGUS) solve for
rare patterns of several lines, and it does not relate different breakdowns of the same
company to each other (a department-by-gender breakdown against the department and the
gender breakdowns): cross-tabulations need more than this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple

import polars as pl

__all__ = ["KEY_COLUMNS", "suppress_small_cells"]

KEY_COLUMNS: Final = ("metric", "period", "company", "group_by", "group")
_REQUIRED: Final = (*KEY_COLUMNS, "value", "n")

_ROW: Final = "__suppression_row"
_HID: Final = "__suppression_hidden"

_SIBLINGS: Final = ("metric", "period", "company", "group_by")
_SAME_TOTAL: Final = ("metric", "period", "company")
_COMPANIES: Final = ("metric", "period", "group_by", "group")
_PARTITIONS: Final = (_SIBLINGS, _SAME_TOTAL, _COMPANIES)


def _id(keys: tuple[str, ...]) -> str:
    """The column holding the partition of ``keys`` as one integer."""
    return "__suppression_" + "_".join(keys)


def suppress_small_cells(
    results: pl.DataFrame,
    min_group_size: int = 5,
    *,
    hide: Sequence[str] = (),
    hide_margins: bool = True,
) -> pl.DataFrame:
    """``results`` with ``suppressed`` added; suppressed cells have null value, n and ``hide``.

    The rows keep their order and every other column. ``hide`` names further numeric columns
    that would reveal a hidden cell (e.g. ``numerator``, ``denominator``). ``hide_margins``
    False: a line whose people are all in hidden cells leaves its margin shown (a caller that
    shows totals anyway: the hidden cells then reveal nothing the total does not).
    """
    _check(results, min_group_size, hide)
    # Windows over one integer (a partition's first row) are much cheaper than over strings.
    frame = (
        results.with_row_index(_ROW)
        .with_columns(*(pl.col(_ROW).min().over(keys).alias(_id(keys)) for keys in _PARTITIONS))
        .with_columns(
            _primary(min_group_size).alias(_HID),
            pl.col("group_by").is_not_null().alias(_SIBLING.part),
            pl.col("group_by").is_null().alias(_SIBLING.margin),
            _company_part().alias(_COMPANY.part),
            (pl.col("company").is_null() & pl.col("group_by").is_not_null()).alias(_COMPANY.margin),
        )
    )
    while True:
        before = _hidden_count(frame)
        for family in (_SIBLING, _COMPANY):
            frame = _protect(frame, family, min_group_size, hide_margins)
        if _hidden_count(frame) == before:
            break
    hidden = pl.col(_HID)
    return frame.with_columns(
        *(pl.when(hidden).then(None).otherwise(c).alias(c) for c in ("value", "n", *hide)),
        hidden.alias("suppressed"),
    ).select(*results.columns, "suppressed")


def _check(results: pl.DataFrame, min_group_size: int, hide: Sequence[str]) -> None:
    if isinstance(min_group_size, bool) or not isinstance(min_group_size, int):
        raise TypeError("min_group_size must be an int")
    if min_group_size < 1:
        raise ValueError("min_group_size must be at least 1")
    missing = [c for c in (*_REQUIRED, *hide) if c not in results.columns]
    if missing:
        raise ValueError(f"missing columns: {', '.join(missing)}")
    if "suppressed" in results.columns:
        raise ValueError("results already have a 'suppressed' column")
    if any(c.startswith("__suppression_") for c in results.columns):
        raise ValueError("column names starting with '__suppression_' are reserved")
    protected = set(KEY_COLUMNS) & set(hide)
    if protected:
        raise ValueError(f"key columns cannot be hidden: {', '.join(sorted(protected))}")
    if not results.schema["n"].is_integer():
        raise ValueError("n must be an integer column")
    if results.select((pl.col("n") < 0).any()).item():
        raise ValueError("n must not be negative")


def _hidden_count(frame: pl.DataFrame) -> int:
    return int(frame.select(pl.col(_HID).sum()).item())


def _primary(min_group_size: int) -> pl.Expr:
    n = pl.col("n")
    small = n.is_null() | ((n > 0) & (n < min_group_size))
    return pl.col("group_by").is_not_null() & small


class _Family(NamedTuple):
    """One kind of line: which rows are parts and margins (boolean columns), its partitions."""

    part: str
    margin: str
    line: str
    margin_of: str
    tie: str


_SIBLING: Final = _Family(
    "__suppression_sibling_part",
    "__suppression_total",
    _id(_SIBLINGS),
    _id(_SAME_TOTAL),
    "group",
)
_COMPANY: Final = _Family(
    "__suppression_company_part",
    "__suppression_consolidated",
    _id(_COMPANIES),
    _id(_COMPANIES),
    "company",
)


def _company_part() -> pl.Expr:
    """Per row: a company's breakdown cell whose consolidated cell is in the frame."""
    consolidated = pl.col("company").is_null() & pl.col("group_by").is_not_null()
    has_margin = consolidated.any().over(_id(_COMPANIES))
    return pl.col("company").is_not_null() & pl.col("group_by").is_not_null() & has_margin


def _protect(frame: pl.DataFrame, family: _Family, k: int, hide_margins: bool) -> pl.DataFrame:
    """``frame`` with the complements and margins of one kind of line hidden too.

    A line needs a complement when it is unsafe, or when its margin is hidden and the line
    hides nobody (the margin would then be the sum of the line's cells); an unsafe line with
    nothing left to hide its cells behind hides its margin. The steps are separate
    ``with_columns`` because a window inside another window is evaluated group by group.
    """
    part, margin, hid, n = (pl.col(c) for c in (family.part, family.margin, _HID, "n"))
    line, tie = family.line, pl.col(family.tie)
    hidden_part = part & hid
    candidate = part & ~hid & (n > 0)
    step = frame.with_columns(
        hidden_part.sum().over(line).alias("__suppression_count"),
        pl.when(hidden_part)
        .then(n.fill_null(0))
        .otherwise(0)
        .sum()
        .over(line)
        .alias("__suppression_people"),
        (hidden_part & (n > 0)).any().over(line).alias("__suppression_hides_people"),
        (margin & hid).any().over(family.margin_of).alias("__suppression_margin_hidden"),
        candidate.alias("__suppression_candidate"),
        candidate.any().over(line).alias("__suppression_has_candidate"),
        pl.when(candidate).then(n).min().over(line).alias("__suppression_least_n"),
    )
    count, people = pl.col("__suppression_count"), pl.col("__suppression_people")
    unsafe = (count >= 1) & ((count == 1) | (people < k))
    by_n = pl.col("__suppression_candidate") & (n == pl.col("__suppression_least_n"))
    step = step.with_columns(
        (
            unsafe | (pl.col("__suppression_margin_hidden") & ~pl.col("__suppression_hides_people"))
        ).alias("__suppression_needs"),
        (part & unsafe & ~pl.col("__suppression_has_candidate")).alias("__suppression_stuck"),
        by_n.alias("__suppression_by_n"),
        pl.when(by_n).then(tie).min().over(line).alias("__suppression_least_tie"),
    )
    by_tie = pl.col("__suppression_by_n") & tie.eq_missing(pl.col("__suppression_least_tie"))
    step = step.with_columns(
        by_tie.alias("__suppression_by_tie"),
        pl.when(by_tie).then(pl.col(_ROW)).min().over(line).alias("__suppression_first"),
        pl.col("__suppression_stuck")
        .any()
        .over(family.margin_of)
        .alias("__suppression_hide_margin"),
    )
    complement = (
        pl.col("__suppression_needs")
        & pl.col("__suppression_by_tie")
        & (pl.col(_ROW) == pl.col("__suppression_first"))
    )
    stuck = margin & pl.col("__suppression_hide_margin") & pl.lit(hide_margins)
    newly = (complement | stuck).fill_null(False)
    return step.with_columns((hid | newly).alias(_HID)).select(frame.columns)
