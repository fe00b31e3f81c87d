"""``assay score --task ranking``: a judgments file (svmlight/LETOR or CSV; gzipped when its
name ends in .gz) in, one row per judgment out, no server or database (imports torch once the
files are good)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

from app.cli.scoring import write_rows
from app.core.config import get_settings
from app.kinds.errors import FormatError
from app.kinds.ranking.formats import FEATURES_KEY, iter_rows
from app.kinds.rows import Row
from app.services.export import spreadsheet_safe

COLUMNS = ("line", "qid", "influence", "self_influence", "suspicion_rank", "estimator")


def read_judgments(path: Path) -> list[Row]:
    """Every judgment of the file, any grade (the scale is the file's own)."""
    raw, name = path.read_bytes(), path.name
    if name.lower().endswith(".gz"):
        try:
            raw, name = gzip.decompress(raw), name[:-3]
        except (OSError, EOFError) as err:
            raise FormatError(path.name, None, None, f"not a gzip file: {err}") from None
    return list(iter_rows(io.BytesIO(raw), name, labels=None))


def score_ranking_files(
    train: Path,
    dev: Path | None,
    out: Path,
    *,
    estimator: str | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[int, str]:
    """Rank TRAIN's judgments by suspicion; returns the rows written and a line saying the
    ranker's settings and fit (model, loss, penalty, standardisation, NDCG@10)."""
    rows = read_judgments(train)
    dev_rows = read_judgments(dev) if dev is not None else []
    from workers.kinds.ranking.pipeline import Judged, score_judgments  # torch

    def judged(found: list[Row]) -> list[Judged]:
        return [Judged(r.group, r.extra[FEATURES_KEY], int(r.label)) for r in found]

    if progress is not None:
        progress(0.0, "scoring")
    try:
        output = score_judgments(
            judged(rows), get_settings(), dev=judged(dev_rows), estimator=estimator
        )
    except ValueError as err:  # no grade above 0: nothing to order
        raise FormatError(train.name, None, "grade", str(err)) from None
    s, m = output.scores, output.metrics
    write_rows(
        out,
        COLUMNS,
        (
            [
                row.line - 1,  # 0-based, as the file's lines count from the first
                spreadsheet_safe(row.group),  # the file's own text
                "" if s.influence is None else f"{s.influence[i]:.6e}",
                f"{s.self_influence[i]:.6e}",
                int(s.suspicion_rank[i]),
                m["estimator"],
            ]
            for i, row in enumerate(rows)
        ),
    )
    fit = f"train NDCG@10 {m['train_ndcg@10']:.3f}"
    if "dev_ndcg@10" in m:
        fit += f", dev NDCG@10 {m['dev_ndcg@10']:.3f}"
    fitted = (
        f"ranker: {m['model']} scorer, {m['loss']} loss, L2 penalty {m['penalty']} on the mean "
        f"loss over queries, {m['features']} features standardised with the training mean and "
        f"standard deviation; {m['judgments']} judgments in {m['queries']} queries; {fit}; "
        f"estimator {m['estimator']}"
    )
    return len(rows), fitted
