"""How each task kind trains and scores on a worker (the web side's half is
``app.kinds.registry``)."""

from __future__ import annotations

from collections.abc import Callable

from app.core.config import Settings
from app.kinds import TaskKind
from app.services.job_lease import Lease
from workers.kinds.ranking import job as ranking
from workers.kinds.sequence_tagging import job as sequence_tagging
from workers.kinds.survival import job as survival
from workers.kinds.text_classification import job as text_classification

# a trainer runs a claimed job to its stored results (or marks it failed)
Trainer = Callable[[Lease, Settings], None]

TRAINERS: dict[TaskKind, Trainer] = {
    TaskKind.text_classification: text_classification.train_and_score,
    TaskKind.sequence_tagging: sequence_tagging.train_and_score,
    TaskKind.ranking: ranking.train_and_score,
    TaskKind.survival: survival.train_and_score,
}
