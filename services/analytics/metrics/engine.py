"""The one entry point: every metric of a tenant's data as one long frame."""

from __future__ import annotations

import polars as pl

from services.analytics.metrics.childcare import childcare_cells
from services.analytics.metrics.datasets import Datasets
from services.analytics.metrics.pay import pay_cells
from services.analytics.metrics.periods import DEFAULT_FISCAL_YEAR_START, check_fiscal_year_start
from services.analytics.metrics.result import KEYS, RESULT_SCHEMA, empty_result
from services.analytics.metrics.workforce import workforce_cells
from services.analytics.metrics.working_hours import working_hours_cells

__all__ = ["compute_all"]


def compute_all(data: Datasets, fiscal_year_start: int = DEFAULT_FISCAL_YEAR_START) -> pl.DataFrame:
    """Every metric of the catalog that ``data`` allows, per period, per company and for the
    whole group (company null), in total and by each allowed breakdown.

    ``fiscal_year_start`` is the month (1..12) the tenant's fiscal year starts in. The result
    has the columns of :data:`result.RESULT_SCHEMA`, sorted by metric, period, company,
    group_by and group (nulls first). A kind with no data gives no rows.
    """
    start = check_fiscal_year_start(fiscal_year_start)
    parts = [
        part
        for part in (
            workforce_cells(data.employees, start),
            working_hours_cells(data.attendance, data.employees, start),
            pay_cells(data.payroll),
            childcare_cells(data.childcare, start),
        )
        if part is not None
    ]
    if not parts:
        return empty_result()
    result = pl.concat(parts, how="vertical").sort(*("metric", *KEYS), nulls_last=False).collect()
    if result.schema != RESULT_SCHEMA:  # a bug in a metric module, not bad data
        raise AssertionError(f"result schema {result.schema} is not {RESULT_SCHEMA}")
    return result
