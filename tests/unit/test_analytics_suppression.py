"""services.analytics.suppression: primary and complementary suppression of small cells."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import polars as pl
import pytest

from services.analytics.suppression import suppress_small_cells

SCHEMA = {
    "metric": pl.String,
    "period": pl.String,
    "company": pl.String,
    "group_by": pl.String,
    "group": pl.String,
    "value": pl.Float64,
    "n": pl.Int64,
}
Key = tuple[str | None, str | None, str | None]  # company, group_by, group


def frame(
    cells: list[tuple[str | None, str | None, str | None, float | None, int | None]],
    metric: str = "headcount",
    period: str = "2024-03",
) -> pl.DataFrame:
    """Cells as (company, group_by, group, value, n) of one metric and period."""
    rows = [(metric, period, *cell) for cell in cells]
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def departments(
    counts: dict[str, int], company: str | None = "A", total: bool = True
) -> list[tuple[str | None, str | None, str | None, float | None, int | None]]:
    """A headcount breakdown by department (value == n), with its total row first."""
    cells: list[tuple[str | None, str | None, str | None, float | None, int | None]] = []
    if total:
        everyone = sum(counts.values())
        cells.append((company, None, None, float(everyone), everyone))
    cells += [(company, "department", g, float(c), c) for g, c in counts.items()]
    return cells


def hidden(result: pl.DataFrame) -> set[Key]:
    rows = result.filter(pl.col("suppressed")).select("company", "group_by", "group").rows()
    return {(c, b, g) for c, b, g in rows}


def dept(group: str, company: str | None = "A") -> Key:
    return (company, "department", group)


def total(company: str | None = "A") -> Key:
    return (company, None, None)


# Primary suppression


def test_small_breakdown_cells_are_hidden_with_every_number_that_describes_them() -> None:
    results = frame(departments({"Sales": 10, "HR": 3, "IT": 2})).with_columns(
        numerator=pl.col("value") * 2, unit=pl.lit("people")
    )
    out = suppress_small_cells(results, 5, hide=["numerator"])

    assert out.columns == [*results.columns, "suppressed"]
    assert hidden(out) == {dept("HR"), dept("IT")}
    gone = out.filter(pl.col("suppressed"))
    assert gone.select("value", "n", "numerator").null_count().row(0) == (2, 2, 2)
    assert gone["unit"].to_list() == ["people", "people"]
    kept = out.filter(~pl.col("suppressed"))
    assert kept.select("group", "value", "n", "numerator").rows() == [
        (None, 15.0, 15, 30.0),
        ("Sales", 10.0, 10, 20.0),
    ]


def test_a_cell_describing_nobody_is_shown_and_never_chosen_as_complement() -> None:
    out = suppress_small_cells(frame(departments({"Sales": 10, "IT": 7, "HR": 2, "Legal": 0})))

    assert hidden(out) == {dept("HR"), dept("IT")}
    legal = out.filter(pl.col("group") == "Legal")
    assert legal.select("value", "n", "suppressed").row(0) == (0.0, 0, False)


def test_a_breakdown_cell_of_unknown_size_is_hidden() -> None:
    cells = departments({"Sales": 10, "IT": 7, "HR": 8})
    cells.append(("A", "department", "Unknown", 1.0, None))
    out = suppress_small_cells(frame(cells))

    assert hidden(out) == {dept("Unknown"), dept("IT")}


def test_totals_are_not_suppressed_for_their_own_size() -> None:
    results = frame([("A", None, None, 3.0, 3), (None, None, None, 1.0, 1)])
    out = suppress_small_cells(results, 50)

    assert not out["suppressed"].any()
    assert out.drop("suppressed").equals(results)


# Complementary suppression


def test_a_single_hidden_sibling_takes_the_smallest_visible_sibling_with_it() -> None:
    out = suppress_small_cells(frame(departments({"Sales": 40, "IT": 9, "Finance": 7, "HR": 2})))

    assert hidden(out) == {dept("HR"), dept("Finance")}
    assert total() not in hidden(out)


def test_complement_ties_are_broken_by_group_value_whatever_the_row_order() -> None:
    cells = departments({"Sales": 7, "Finance": 7, "IT": 7, "HR": 1})
    cells.append(("A", "department", None, 7.0, 7))  # a null group value sorts last
    results = frame(cells)
    first = suppress_small_cells(results)
    assert hidden(first) == {dept("HR"), dept("Finance")}

    for seed in range(5):
        shuffled = results.sample(fraction=1.0, shuffle=True, seed=seed)
        out = suppress_small_cells(shuffled)
        assert hidden(out) == hidden(first)
        assert out.drop("suppressed").equals(
            shuffled.with_columns(
                value=pl.when(pl.col("group").is_in(["HR", "Finance"]))
                .then(None)
                .otherwise("value"),
                n=pl.when(pl.col("group").is_in(["HR", "Finance"])).then(None).otherwise("n"),
            )
        )


def test_two_primary_cells_covering_the_threshold_need_no_complement() -> None:
    out = suppress_small_cells(frame(departments({"Sales": 20, "IT": 6, "HR": 2, "Legal": 3})))

    assert hidden(out) == {dept("HR"), dept("Legal")}


def test_two_primary_cells_below_the_threshold_together_get_a_complement() -> None:
    # Each of the two people could subtract their own value from the pair and learn the other's.
    out = suppress_small_cells(frame(departments({"Sales": 20, "IT": 6, "HR": 1, "Legal": 1})))

    assert hidden(out) == {dept("HR"), dept("Legal"), dept("IT")}


def test_a_line_without_its_total_row_is_still_protected() -> None:
    # The total is shown elsewhere (e.g. the company's headcount), so the line still needs two.
    out = suppress_small_cells(frame(departments({"Sales": 20, "IT": 6, "HR": 2}, total=False)))

    assert hidden(out) == {dept("HR"), dept("IT")}


@pytest.mark.parametrize(
    "counts",
    [{"Sales": 3}, {"Sales": 3, "Legal": 0}, {"Sales": 1, "HR": 1, "IT": 0}],
    ids=["only-cell", "only-cell-besides-nobody", "all-people-hidden-below-threshold"],
)
def test_total_that_would_reveal_the_hidden_cells_is_hidden_too(counts: dict[str, int]) -> None:
    results = frame(departments(counts, company="B") + departments({"Sales": 10, "IT": 8}))
    out = suppress_small_cells(results)

    hidden_people = {dept(g, "B") for g, c in counts.items() if c > 0}
    assert hidden(out) == hidden_people | {total("B")}
    assert out.filter(pl.col("company") == "A")["suppressed"].not_().all()


def test_each_breakdown_of_a_metric_period_and_company_is_its_own_line() -> None:
    results = pl.concat(
        [
            frame(departments({"Sales": 10, "HR": 2, "IT": 8})),
            frame(departments({"Sales": 10, "HR": 9, "IT": 8})[1:], period="2024-04"),
            frame(departments({"Sales": 10, "HR": 2, "IT": 8})[1:], metric="overtime_hours"),
            frame([("A", "gender", "F", 9.0, 9), ("A", "gender", "M", 11.0, 11)]),
        ]
    )
    out = suppress_small_cells(results)

    assert out.filter("suppressed").select("metric", "period", "group").rows() == [
        ("headcount", "2024-03", "HR"),
        ("headcount", "2024-03", "IT"),
        ("overtime_hours", "2024-03", "HR"),
        ("overtime_hours", "2024-03", "IT"),
    ]


def test_consolidated_cells_do_not_give_a_small_company_away() -> None:
    # Consolidated Sales (15) minus A's Sales (12) would be B's Sales (3).
    results = frame(
        departments({"Sales": 12, "HR": 2, "IT": 6})
        + departments({"Sales": 3}, company="B")
        + departments({"Sales": 15, "HR": 2, "IT": 6}, company=None)
    )
    out = suppress_small_cells(results)

    assert hidden(out) == {
        dept("Sales", "B"),
        total("B"),
        dept("Sales"),  # complement of B's Sales among the companies
        dept("HR"),
        dept("IT"),  # complement of HR among A's departments
        dept("HR", None),
        dept("IT", None),  # complement of HR among the consolidated departments
    }


def test_a_hidden_total_cannot_be_rebuilt_from_another_breakdown() -> None:
    # Consolidated Sales minus B's Sales would give A's Sales (2): B's Sales is hidden. It is
    # B's only department, so B's total is hidden; B's gender cells would add up to it again.
    gender = [("B", "gender", "F", 5.0, 5), ("B", "gender", "M", 5.0, 5)]
    results = frame(
        departments({"Sales": 2, "IT": 9, "HR": 8})
        + departments({"Sales": 10}, company="B")
        + gender
        + departments({"Sales": 12, "IT": 9, "HR": 8}, company=None)
    )
    out = suppress_small_cells(results)

    assert hidden(out) == {
        dept("Sales"),
        dept("HR"),  # complement of Sales among A's departments
        dept("Sales", "B"),  # complement of A's Sales among the companies
        total("B"),  # B's Sales is B's total
        ("B", "gender", "F"),
        ("B", "gender", "M"),
        dept("HR", None),  # only A has HR: the consolidated HR would be A's
        dept("IT", None),  # complement of HR among the consolidated departments
        dept("IT"),  # A's IT alone would be the hidden consolidated IT
    }
    assert recovered(results, out) == set()


# Thresholds


def test_threshold_one_hides_nothing() -> None:
    results = random_results(7)
    out = suppress_small_cells(results, 1)

    assert not out["suppressed"].any()
    assert out.drop("suppressed").equals(results)


def test_a_threshold_above_everyone_hides_every_breakdown_cell_and_revealing_total() -> None:
    results = random_results(8)
    out = suppress_small_cells(results, 10**9)

    breakdown = pl.col("group_by").is_not_null()
    populated = breakdown & (pl.col("n") > 0)
    with_people = results.filter(populated).select("metric", "period", "company").unique()
    flags = results.join(
        with_people.with_columns(has_people=pl.lit(True)),
        on=["metric", "period", "company"],
        how="left",
        nulls_equal=True,
    ).select(expected=pl.when(breakdown).then(pl.col("n") > 0).otherwise(pl.col("has_people")))
    expected = flags["expected"].fill_null(False)
    assert out["suppressed"].to_list() == expected.to_list()


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"min_group_size": 0}, "at least 1"),
        ({"hide": ["numerator"]}, "missing columns: numerator"),
        ({"hide": ["group"]}, "key columns"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        suppress_small_cells(frame(departments({"Sales": 10})), **kwargs)


def test_bad_frames_are_refused() -> None:
    good = frame(departments({"Sales": 10}))
    with pytest.raises(ValueError, match="missing columns: n"):
        suppress_small_cells(good.drop("n"))
    with pytest.raises(ValueError, match="negative"):
        suppress_small_cells(good.with_columns(n=pl.lit(-1, pl.Int64)))
    with pytest.raises(ValueError, match="integer"):
        suppress_small_cells(good.with_columns(pl.col("n").cast(pl.Float64)))
    with pytest.raises(ValueError, match="already"):
        suppress_small_cells(good.with_columns(suppressed=pl.lit(False)))
    with pytest.raises(TypeError):
        suppress_small_cells(good, 2.5)  # type: ignore[arg-type]


# Property: no hidden cell comes back by subtraction, over seeded random results


DEPARTMENTS = ["Sales", "Engineering", "HR", "Finance", "Legal", "Board"]
DIMENSIONS: dict[str, tuple[list[str], list[int]]] = {
    "department": (DEPARTMENTS, [40, 30, 10, 10, 3, 1]),
    "gender": (["F", "M", "X"], [45, 53, 2]),
    "employment_type": (["regular", "contract", "part_time"], [70, 20, 10]),
}


def random_results(seed: int) -> pl.DataFrame:
    """Headcount and overtime results of random people of 1-3 companies and their group.

    Each breakdown partitions its company's people; every dimension value gets a cell, with
    n == 0 where nobody has it; the consolidated cells add the companies' up.
    """
    rng = random.Random(seed)
    rows: list[tuple[Any, ...]] = []
    for period in ("2024-03", "2024-04"):
        companies = ["A", "B", "C"][: rng.randint(1, 3)]
        people = [
            (company, {d: rng.choices(v, w)[0] for d, (v, w) in DIMENSIONS.items()}, rng.random())
            for company in companies
            for _ in range(rng.choice([1, 3, 6, 20, 80, 300]))
        ]
        for company in [*companies, None]:
            mine = [p for p in people if company is None or p[0] == company]
            for metric in ("headcount", "overtime_hours"):

                def value(group: list[Any], metric: str = metric) -> float:
                    return float(len(group)) if metric == "headcount" else sum(p[2] for p in group)

                rows.append((metric, period, company, None, None, value(mine), len(mine)))
                for dim, (values, _) in DIMENSIONS.items():
                    for v in values:
                        cell = [p for p in mine if p[1][dim] == v]
                        rows.append((metric, period, company, dim, v, value(cell), len(cell)))
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def lines(
    results: pl.DataFrame, out: pl.DataFrame
) -> list[tuple[str, list[dict[str, Any]], dict[str, Any] | None]]:
    """Every line (kind, its parts, its margin or None) with true and published numbers."""
    both = results.with_columns(
        shown=out["value"], shown_n=out["n"], suppressed=out["suppressed"]
    ).to_dicts()
    totals = {(r["metric"], r["period"], r["company"]): r for r in both if r["group_by"] is None}
    consolidated = {
        (r["metric"], r["period"], r["group_by"], r["group"]): r
        for r in both
        if r["company"] is None and r["group_by"] is not None
    }
    siblings: defaultdict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    companies: defaultdict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for r in both:
        if r["group_by"] is None:
            continue
        siblings[r["metric"], r["period"], r["company"], r["group_by"]].append(r)
        if r["company"] is not None:
            companies[r["metric"], r["period"], r["group_by"], r["group"]].append(r)
    found: list[tuple[str, list[dict[str, Any]], dict[str, Any] | None]] = [
        ("siblings", parts, totals.get(key[:3])) for key, parts in siblings.items()
    ]
    found += [
        ("companies", parts, consolidated[key])
        for key, parts in companies.items()
        if key in consolidated
    ]
    return found


@pytest.mark.parametrize("seed", range(40))
def test_no_hidden_cell_can_be_recovered_from_its_margin(seed: int) -> None:
    results = random_results(seed)
    k = random.Random(seed).choice([2, 3, 5, 10])
    out = suppress_small_cells(results, k)
    checked: Counter[str] = Counter()

    # Every small breakdown cell is hidden, and a hidden cell shows no number.
    small = pl.col("group_by").is_not_null() & (pl.col("n") > 0) & (pl.col("n") < k)
    assert out.filter(results.select(small).to_series() & ~out["suppressed"]).is_empty()
    assert (
        out.filter("suppressed").select("value", "n").null_count().row(0)
        == (out["suppressed"].sum(),) * 2
    )

    for kind, parts, margin in lines(results, out):
        gone = [p for p in parts if p["suppressed"]]
        safe = not gone or (len(gone) >= 2 and sum(p["n"] for p in gone) >= k)
        if margin is not None and not margin["suppressed"]:
            # The attack: the margin minus the visible parts. With one hidden part that is
            # the part's value (for counts exactly); with several, a group of >= k people.
            assert safe, (kind, gone)
            if gone and kind == "siblings":
                rest = margin["shown"] - sum(p["shown"] for p in parts if not p["suppressed"])
                assert rest == pytest.approx(sum(p["value"] for p in gone))
                checked["hidden groups"] += 1
        elif margin is not None:
            # A hidden margin cannot be rebuilt as the sum of this line's cells ...
            assert any(p["n"] > 0 for p in gone) or all(p["n"] == 0 for p in parts)
            # ... and the line is safe, or nobody is left to hide its hidden cells behind.
            assert safe or all(p["suppressed"] or p["n"] == 0 for p in parts)
            checked["hidden margins"] += 1
        checked[kind] += 1
    assert checked["siblings"] > 0
    assert checked["companies"] > 0 or results["company"].n_unique() == 2

    # The attack repeated: solve every line with one unknown, until nothing more comes out.
    assert recovered(results, out) == set()


def recovered(results: pl.DataFrame, out: pl.DataFrame) -> set[int]:
    """Rows of hidden cells an attacker solves for, one unknown of one line at a time."""
    known = set(out.with_row_index().filter(~pl.col("suppressed"))["index"].to_list())
    hidden_before = set(range(results.height)) - known
    keyed = results.with_row_index().to_dicts()
    index = {(r["metric"], r["period"], r["company"], r["group_by"], r["group"]): r for r in keyed}
    equations: list[list[int]] = []  # margin row first, then its parts
    for r in keyed:
        if r["group_by"] is not None:
            continue
        parts_by: defaultdict[str, list[int]] = defaultdict(list)
        for c in keyed:
            if c["group_by"] is not None and (c["metric"], c["period"], c["company"]) == (
                r["metric"],
                r["period"],
                r["company"],
            ):
                parts_by[c["group_by"]].append(c["index"])
        equations += [[r["index"], *parts] for parts in parts_by.values()]
    for c in keyed:
        if c["company"] is None and c["group_by"] is not None:
            parts = [
                c2["index"]
                for c2 in keyed
                if c2["company"] is not None
                and (c2["metric"], c2["period"], c2["group_by"], c2["group"])
                == (c["metric"], c["period"], c["group_by"], c["group"])
            ]
            equations.append([c["index"], *parts])
    assert index  # every cell has a unique key
    changed = True
    while changed:
        changed = False
        for equation in equations:
            unknown = [i for i in equation if i not in known]
            if len(unknown) == 1:
                known.add(unknown[0])
                changed = True
    return hidden_before & known


def test_random_results_exercise_every_rule() -> None:
    """The property above is not vacuous: over its seeds every kind of suppression happens."""
    seen: Counter[str] = Counter()
    for seed in range(40):
        results = random_results(seed)
        k = random.Random(seed).choice([2, 3, 5, 10])
        out = suppress_small_cells(results, k)
        primary = results.select(
            pl.col("group_by").is_not_null() & (pl.col("n") > 0) & (pl.col("n") < k)
        ).to_series()
        gone = out["suppressed"]
        seen["primary"] += int(primary.sum())
        seen["complement"] += int((gone & ~primary & results["group_by"].is_not_null()).sum())
        seen["total"] += int((gone & results["group_by"].is_null()).sum())
        seen["consolidated"] += int((gone & results["company"].is_null()).sum())
    assert min(seen.values()) > 10, seen


def test_a_hundred_thousand_cells() -> None:
    rng = random.Random(1)
    cells = [
        (
            f"metric{m}",
            f"2024-{p:02d}",
            c,
            "department" if g is not None else None,
            g,
            1.0,
            None if g is None else rng.choice([0, 1, 2, 4, 5, 8, 30]),
        )
        for m in range(10)
        for p in range(1, 13)
        for c in ["A", "B", "C", "D", None]
        for g in [None, *(f"d{i:02d}" for i in range(160))]
    ]
    results = pl.DataFrame(cells, schema=SCHEMA, orient="row").with_columns(
        n=pl.col("n").fill_null(pl.col("n").sum().over("metric", "period", "company"))
    )
    assert results.height > 95_000
    out = suppress_small_cells(results)
    assert out.height == results.height
    assert out["suppressed"].sum() > results.filter(pl.col("n").is_between(1, 4)).height


def test_margins_can_be_left_to_the_caller() -> None:
    # One department holds the whole company: its cell is hidden, and with hide_margins False
    # the company total stays shown (it reveals nothing more than the hidden line's sum).
    frame = pl.DataFrame(
        {
            "metric": ["headcount"] * 2,
            "period": ["2024-04"] * 2,
            "company": ["SUB1"] * 2,
            "group_by": [None, "department"],
            "group": [None, "開発部"],
            "value": [2.0, 2.0],
            "n": [2, 2],
        }
    )
    shown = suppress_small_cells(frame, 5, hide_margins=False)
    assert shown["suppressed"].to_list() == [False, True]
    assert suppress_small_cells(frame, 5)["suppressed"].to_list() == [True, True]
