"""Row ids must be unique: a clash is a data error showing both rows, or a counted bad row with ``skip_bad_rows``."""
from __future__ import annotations

from mixmerge.data.sources import Converted, DataError


def unique_ids(result: Converted, where: str, skip_bad_rows: bool) -> None:
    """Two different rows with one id: an error showing both rows (their sources); with ``skip_bad_rows`` the
    first is kept and each later one is skipped and counted as a bad row."""
    first: dict = {}
    kept = []
    for row in result.rows:
        if row["id"] not in first:
            first[row["id"]] = row
            kept.append(row)
            continue
        message = (f"{where}: duplicate id {row['id']!r}: row {first[row['id']]['source']!r} and row "
                   f"{row['source']!r}")
        if not skip_bad_rows:
            raise DataError(message)
        result.bad.append(message)
    result.rows = kept
