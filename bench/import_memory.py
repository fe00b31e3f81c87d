"""Streamed import of a million-row CSV: peak memory of the importing process and rows per second,
PostgreSQL and SQLite.

The file is the bundled Rotten Tomatoes snippets repeated with unique ids (text, silver label,
reference label), written to a temporary directory. Each import is the real command,
`assay import PROJECT FILE`, in a child process; its peak resident memory is the child's own
high-water mark (``VmHWM``), polled from /proc. The same command on a one-row file gives the
baseline (interpreter, libraries, start-up), subtracted from the wall time for rows per second.

    python -m bench.import_memory [--rows 1000000] [--backends postgresql sqlite]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS, write_table
from bench.next_item import backend

COLUMNS = ("id", "text", "label", "reference_label")
POLL_S = 0.02


def write_csv(path: Path, rows: int) -> int:
    """``rows`` demo snippets, cycled, each with a unique id; returns the file's size."""
    from app.cli.demo import DATA_FILE

    with gzip.open(DATA_FILE, "rt", encoding="utf-8", newline="") as handle:
        demo = [(r["text"], r["silver_label"], r["label"]) for r in csv.DictReader(handle)]
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for i, (body, silver, gold) in zip(range(rows), itertools.cycle(demo), strict=False):
            writer.writerow((f"r{i}", body, silver, gold))
    return path.stat().st_size


def import_child(project: str, path: Path) -> tuple[float, float]:
    """Run `assay import` in a child process: (wall seconds, its peak RSS in MiB).

    The peak is the child's ``VmHWM`` (high-water resident set of its own address space),
    polled until it exits: ``ru_maxrss`` would also count the parent's memory at the fork.
    """
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "import", project, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    peak_kib = 0
    status = Path(f"/proc/{child.pid}/status")
    while child.poll() is None:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
            peak_kib = max(peak_kib, int(fields["VmHWM"].split()[0]))
        except (OSError, KeyError, ValueError):
            pass  # exiting between the poll and the read
        time.sleep(POLL_S)
    seconds = time.perf_counter() - start
    output = child.stdout.read().decode()
    child.stdout.close()
    if child.returncode != 0:
        raise RuntimeError(f"assay import failed: {output}")
    print(output.strip(), flush=True)
    return seconds, peak_kib / 1024


def run(kind: str, big: Path, rows: int, workdir: Path) -> dict:
    from app.core.db import session_scope
    from app.services.projects import create_project

    tiny = workdir / "one.csv"
    write_csv(tiny, 1)
    with backend(kind, workdir / kind):
        with session_scope() as session:
            create_project(session, "baseline", ["fresh", "rotten"])
            create_project(session, "big", ["fresh", "rotten"])
        base_s, base_mib = import_child("baseline", tiny)
        seconds, peak_mib = import_child("big", big)
    result = {
        "database": kind,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / max(seconds - base_s, 1e-9),
        "peak_rss_mib": peak_mib,
        "baseline_rss_mib": base_mib,
        "baseline_s": base_s,
    }
    print(result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        big = workdir / "big.csv"
        size = write_csv(big, args.rows)
        print(f"wrote {args.rows:,} rows, {size / 2**20:.0f} MiB", flush=True)
        results = [run(kind, big, args.rows, workdir) for kind in args.backends]
    load = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "import.json").write_text(json.dumps(results, indent=2) + "\n")
    write_table(
        "import",
        f"Streamed import of a {args.rows:,}-row CSV ({size / 2**20:.0f} MiB), `assay import`",
        ["database", "rows/s", "seconds", "peak RSS MiB", "same command, 1-row file: RSS MiB"],
        [
            [
                r["database"],
                f"{r['rows_per_s']:,.0f}",
                f"{r['seconds']:.0f}",
                f"{r['peak_rss_mib']:.0f}",
                f"{r['baseline_rss_mib']:.0f}",
            ]
            for r in results
        ],
        note="The importing process's peak resident memory (`VmHWM` of the child), one "
        "transaction, batches of `ASSAY_IMPORT_BATCH_ROWS` rows (PostgreSQL `COPY`, SQLite "
        "multi-row INSERT); rows/s less the 1-row run's start-up time. The whole-file parser "
        "it replaces held the file, its decoded text and every row at once. "
        f"{os.cpu_count()} CPU cores shared with other jobs (load average {load[0]:.1f} at the "
        "end); PostgreSQL 127.0.0.1, SQLite WAL file. Reproduce: `python -m bench.import_memory`.",
    )


if __name__ == "__main__":
    main()
