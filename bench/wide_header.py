"""A CSV header of many columns, one of them repeated: how long the upload's header check takes
to name the repeat, now (one pass with a set) and as it was (``header.count`` per column).

The file is the header and one row; the repeated column is the last, so both checks walk the
whole header. ``ASSAY_MAX_CSV_COLUMNS`` is raised past the widest header here (by default a
header over 1,000 columns is refused before this check).

    python -m bench.wide_header
"""

from __future__ import annotations

import os
import time

from bench.common import machine, write_table

WIDTHS = (1_000, 10_000, 40_000, 100_000)
QUADRATIC_UP_TO = 40_000  # the old check takes minutes past this


def header_file(width: int) -> bytes:
    names = ["text", "label", *(f"c{i}" for i in range(width - 3)), f"c{width - 4}"]
    return (",".join(names) + "\n" + ",".join(["x", "fresh", *["1"] * (width - 2)]) + "\n").encode()


def seconds(check, *args) -> float:
    started = time.perf_counter()
    check(*args)
    return time.perf_counter() - started


def check_now(data: bytes) -> None:
    from app.kinds.errors import FormatError
    from app.kinds.text_classification.formats import parse_dataset

    try:
        parse_dataset(data, "wide.csv", labels=["fresh", "rotten"])
    except FormatError as err:
        assert "appears twice" in str(err), err
    else:
        raise AssertionError("the repeated column was not found")


def check_before(data: bytes) -> None:
    header = data.split(b"\n", 1)[0].decode().split(",")
    assert next((name for name in header if header.count(name) > 1), None) is not None


def main() -> None:
    os.environ["ASSAY_MAX_CSV_COLUMNS"] = str(max(WIDTHS) + 1)
    rows = []
    for width in WIDTHS:
        data = header_file(width)
        before = round(seconds(check_before, data), 2) if width <= QUADRATIC_UP_TO else "not run"
        rows.append([f"{width:,}", round(seconds(check_now, data), 3), before])
    write_table(
        "wide_header",
        "Naming a repeated column in a wide CSV header (seconds)",
        ["columns", "now: one pass", "before: count per column"],
        rows,
        f"The whole upload parse of a header and one row, the repeat in the last column; "
        f"'before' is the old check alone, not run past {QUADRATIC_UP_TO:,} columns. {machine()}. "
        "Reproduce: `python -m bench.wide_header`.",
    )


if __name__ == "__main__":
    main()
