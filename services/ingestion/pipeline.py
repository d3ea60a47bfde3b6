"""From an uploaded file on disk to a validated dataset: the one path uploads take.

CSV files go through the vectorised validation (:mod:`columnar`) when it can promise the
row-by-row result (same rows, errors and frames), and through the row-by-row path
(:mod:`reading` + :mod:`validate`) otherwise, as XLSX files always do.
"""

from __future__ import annotations

from pathlib import Path

from services.ingestion import columnar, reading, validate
from services.ingestion.kinds import SPECS, Kind

CSV_SUFFIXES = (".csv", ".txt")


def read_and_validate(
    path: Path,
    filename: str,
    kind: Kind,
    sheet: str | None,
    ctx: validate.Context,
    limits: reading.Limits,
) -> validate.Validated:
    spec = SPECS[kind]
    if Path(filename).suffix.lower() in CSV_SUFFIXES and path.stat().st_size > 0:
        fast = columnar.try_fast(path, spec, ctx)
        if fast is not None:
            return fast
    with reading.read_table(path, filename=filename, sheet=sheet, limits=limits) as table:
        return validate.validate(spec, table.header, table.rows, ctx, table.header_row)
