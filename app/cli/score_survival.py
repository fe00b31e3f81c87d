"""``assay score --task survival``: a follow-up CSV in, one row per record out, no server or
database (imports torch once the files are good)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from app.cli.scoring import write_rows
from app.core.config import get_settings
from app.kinds.errors import FormatError
from app.kinds.survival.formats import FIELDS_KEY, iter_rows
from app.services.export import spreadsheet_safe

COLUMNS = ("id", "influence", "self_influence", "suspicion_rank", "estimator")


def score_survival_files(
    train: Path,
    dev: Path | None,
    out: Path,
    *,
    duration: str,
    event: str,
    progress: Callable[[float, str], None] | None = None,
) -> tuple[int, str]:
    """Rank TRAIN's records by suspicion; returns the rows written and a line saying the model's
    settings and fit (penalty, ties, standardisation, C-index)."""
    labels = [duration, event]
    with train.open("rb") as handle:
        rows = list(iter_rows(handle, train.name, labels=labels))
    dev_rows = []
    if dev is not None:
        with dev.open("rb") as handle:
            dev_rows = list(iter_rows(handle, dev.name, labels=labels))
    from workers.kinds.survival.pipeline import score_records  # torch

    if progress is not None:
        progress(0.0, "scoring")
    try:
        output = score_records(
            [r.extra[FIELDS_KEY] for r in rows],
            [r.label for r in rows],
            get_settings(),
            dev_fields=[r.extra[FIELDS_KEY] for r in dev_rows],
            dev_labels=[r.label for r in dev_rows],
        )
    except ValueError as err:  # a covariate the design matrix cannot encode
        raise FormatError(train.name, None, None, str(err)) from None
    s = output.scores
    write_rows(
        out,
        COLUMNS,
        (
            [
                # the file's id column when it has one, else the 0-based row
                spreadsheet_safe(row.external_id) if row.id_given else i,
                "" if s.influence is None else f"{s.influence[i]:.6e}",
                f"{s.self_influence[i]:.6e}",
                int(s.rank[i]),
                output.estimator,
            ]
            for i, row in enumerate(rows)
        ),
    )
    return len(rows), summary(output.metrics)


def summary(metrics: dict) -> str:
    """The defaults and fit of a run, for the terminal."""
    fit = f"C-index train {metrics['c_index_train']:.3f}"
    if "c_index_dev" in metrics:
        fit += f", dev {metrics['c_index_dev']:.3f}"
    return (
        f"Cox model, {metrics['ties']} ties, L2 penalty {metrics['penalty']} on the partial "
        f"likelihood / n (ASSAY_SURVIVAL_PENALTY); {metrics['covariates']} covariate columns, "
        f"numeric ones standardised with the {metrics['standardised']}; {fit}; "
        f"ranking: {metrics['ranking']}"
    )
