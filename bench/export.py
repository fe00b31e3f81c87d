"""Export of a large project: rows per second, time to the first byte and peak memory,
SQLite and PostgreSQL, CSV and JSONL.

The project is ``bench.next_item``'s synthetic one (items and a model version ranking them all),
plus what an export also reads: four scores per item and a decision on 1% of the items, each
added by one INSERT ... SELECT in the database. Timed: ``app.services.export.stream_export``,
the generator the export routes hand to ``StreamingResponse``, consumed and thrown away as a
socket would. Peak memory is the resident memory the export added at its highest.

    python -m bench.export [--rows 1000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.common import PeakMemory, machine, write_table
from bench.next_item import SQLITE_NOW, backend, load

SCORE_KINDS = ("suspicion", "self_influence", "dev_influence", "loss")
DECIDED_EVERY = 100


def add_scores_and_decisions(project_id: int) -> None:
    """Scores for every prediction, and a correction by annotator0 on every 100th item."""
    from app.core.db import session_scope

    with session_scope() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        now = datetime.now(UTC) if postgres else SQLITE_NOW
        for kind in SCORE_KINDS:
            session.execute(
                text(
                    "INSERT INTO scores (model_version_id, item_id, kind, value)"
                    " SELECT model_version_id, item_id, :kind, suspicion_rank * 0.001"
                    " FROM predictions"
                ),
                {"kind": kind},
            )
        session.execute(
            text(
                "INSERT INTO label_events (item_id, user_id, source, old_label, new_label,"
                " created_at) SELECT items.id, users.id, 'annotator', items.silver_label,"
                " 'rotten', :now FROM items, users WHERE items.project_id = :p"
                " AND items.id % :every = 0 AND users.username = 'annotator0'"
            ),
            {"now": now, "p": project_id, "every": DECIDED_EVERY},
        )
        session.execute(
            text(
                "UPDATE items SET status = 'reviewed', current_label = 'rotten'"
                " WHERE project_id = :p AND id % :every = 0"
            ),
            {"p": project_id, "every": DECIDED_EVERY},
        )


def measure(project_id: int, fmt: str, batch: int) -> dict[str, float]:
    from app.services.export import CLASSIFICATION_EXPORTS, ExportFormat, stream_export

    size = lines = 0
    first = None
    with PeakMemory() as memory:
        start = time.perf_counter()
        for chunk in stream_export(
            project_id, CLASSIFICATION_EXPORTS[ExportFormat(fmt)], None, batch
        ):
            if first is None:
                first = time.perf_counter() - start
            size += len(chunk)
            lines += chunk.count(b"\n")
        seconds = time.perf_counter() - start
    rows = lines - (fmt == "csv")  # less the header
    return {
        "rows": rows,
        "seconds": seconds,
        "first_byte_s": first or 0.0,
        "mib": size / 2**20,
        "peak_mib": memory.peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    from app.core.config import get_settings

    table = []
    for kind in args.backends:
        with tempfile.TemporaryDirectory() as tmp, backend(kind, Path(tmp)):
            batch = get_settings().export_batch_rows
            started = time.perf_counter()
            project_id = load(args.rows)
            add_scores_and_decisions(project_id)
            print(f"{kind}: loaded {args.rows:,} items in {time.perf_counter() - started:.0f} s")
            for fmt in ("csv", "jsonl"):
                result = measure(project_id, fmt, batch)
                assert result["rows"] == args.rows, result
                print(kind, fmt, result)
                table.append(
                    [
                        kind,
                        fmt,
                        f"{result['rows']:,}",
                        f"{result['rows'] / result['seconds']:,.0f}",
                        f"{result['seconds']:.1f}",
                        f"{result['first_byte_s']:.2f}",
                        f"{result['mib']:.0f}",
                        f"{result['peak_mib']:.0f}",
                    ]
                )
    write_table(
        "export",
        "Export of a large project, streamed",
        ["backend", "format", "rows", "rows/s", "seconds", "first byte s", "file MiB", "peak MiB"],
        table,
        f"Synthetic items with one model version (a prediction and {len(SCORE_KINDS)} scores "
        f"each) and a correction on 1 in {DECIDED_EVERY}; batches of "
        f"{get_settings().export_batch_rows} rows. Peak MiB: resident memory the export added at "
        "its highest; the exports run one after another in one process, so the later ones reuse "
        f"memory the first one freed. {machine()}. Reproduce: `python -m bench.export`.",
    )


if __name__ == "__main__":
    main()
