"""Follow-up records in, scored records out: covariates to a design matrix (fitted on the
training records), a penalised Cox model, and the records' influence (``cox.score_survival``);
shared by the worker job and ``assay score --task survival``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from app.core.config import Settings
from app.kinds.survival.annotation import decode
from workers.engine.covariates import fit_covariates
from workers.engine.cox import SurvivalScores, score_survival

Fields = Sequence[Sequence[str]]  # [[column, raw value], ...] of one record


@dataclass
class SurvivalOutput:
    scores: SurvivalScores  # records in the input order
    covariates: list[str]  # the design matrix's column names
    confidence: np.ndarray  # per record, how likely the model finds its recorded outcome
    risk_percentile: np.ndarray  # per record, % of training records with a lower risk
    estimator: str  # cox_dev (influence on a gold dev target) or cox_self; one ranking
    metrics: dict[str, float | int | str]


def covariate_columns(records: Sequence[Fields]) -> list[str]:
    """Every covariate column of the records, in the order first seen."""
    seen: dict[str, None] = {}
    for fields in records:
        seen.update((name, None) for name, _ in fields)
    return list(seen)


def follow_ups(labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(durations, events) of annotation strings."""
    pairs = [decode(label) for label in labels]
    return np.array([d for d, _ in pairs], dtype=np.float64), np.array([e for _, e in pairs])


def outcome_confidence(expected: np.ndarray, event: np.ndarray) -> np.ndarray:
    """The model's probability of what was recorded by the record's time: 1 - exp(-H) of an
    event by then (H the expected events), exp(-H) of surviving to it when censored."""
    survive = np.exp(-np.asarray(expected, dtype=np.float64))
    return np.where(np.asarray(event) > 0, 1.0 - survive, survive)


def percentile(values: np.ndarray) -> np.ndarray:
    """Per value, the percentage of all values strictly below it."""
    ordered = np.sort(values)
    return 100.0 * np.searchsorted(ordered, values, side="left") / max(len(values), 1)


def score_records(
    train_fields: Sequence[Fields],
    train_labels: Sequence[str],
    settings: Settings,
    *,
    dev_fields: Sequence[Fields] = (),
    dev_labels: Sequence[str] = (),
) -> SurvivalOutput:
    """Fit the Cox model on the training records and score each one: influence on the gold dev
    records' partial likelihood when there are any, self-influence always, ranked by the engine's
    default (``cox.DEFAULT_ESTIMATOR``: self-influence fused with the |deviance residual|, which
    needs no dev records). ValueError names a covariate that cannot be encoded (a numeric column
    with a blank or a word in some row)."""
    columns = covariate_columns(train_fields)
    x, names, transform = fit_covariates([dict(f) for f in train_fields], columns)
    duration, event = follow_ups(train_labels)
    dev = None
    if dev_labels:
        dev_duration, dev_event = follow_ups(dev_labels)
        dev = (transform.transform([dict(f) for f in dev_fields]), dev_duration, dev_event)
    scores = score_survival(
        x,
        duration,
        event,
        dev=dev,
        penalty=settings.survival_penalty,
        ties=settings.survival_ties,
        evidence_k=settings.evidence_k,
        device=settings.device,
    )
    metrics: dict[str, float | int | str] = {
        **scores.metrics,
        "n_train": len(train_labels),
        "n_dev": len(dev_labels),
        "penalty": settings.survival_penalty,
        "ties": settings.survival_ties,
        "covariates": len(names),
        "standardised": "training mean and standard deviation (ddof=1)",
        "ranking": str(scores.estimator),
    }
    return SurvivalOutput(
        scores,
        names,
        outcome_confidence(scores.expected_events, event),
        percentile(np.asarray(scores.risk)),
        "cox_dev" if dev is not None else "cox_self",
        metrics,
    )
