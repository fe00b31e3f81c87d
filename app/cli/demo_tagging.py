"""``assay demo --task sequence_tagging``: the bundled English news sentences with spaCy's
silver entity tags, as a silver training set and a small dev set.

There is no hand-checked gold for this corpus, so the dev set is the corpus's last
``ASSAY_DEMO_NER_DEV`` sentences (100) with their silver tags taken as gold: enough for the
dev influence ranking to have a target, and said so wherever the demo is described. The
sentences come in corpus order (articles stay together); the dev sentences are never trained on.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from app.core.config import get_settings
from app.core.db import session_scope
from app.kinds import TaskKind
from app.kinds.sequence_tagging.formats import Sentence, read_conll, write_conll
from app.models import DatasetKind
from app.services.datasets import import_dataset
from app.services.projects import create_project

DATA_FILE = Path(__file__).parents[1] / "demo_data" / "news_en_silver_ner.conll.gz"
PROJECT_NAME = "English news entities (demo)"


def demo_sentences() -> dict[DatasetKind, list[Sentence]]:
    """Silver training sentences from the corpus's start, gold dev from its end (sizes:
    ``ASSAY_DEMO_NER_TRAIN``, ``ASSAY_DEMO_NER_DEV``)."""
    settings = get_settings()
    with gzip.open(DATA_FILE, "rt", encoding="utf-8", newline="") as handle:
        sentences = list(
            read_conll(handle, DATA_FILE.name, max_tokens=settings.max_sentence_tokens).sentences
        )
    dev_from = len(sentences) - settings.demo_ner_dev
    train = sentences[:dev_from][: settings.demo_ner_train]
    return {DatasetKind.silver: train, DatasetKind.gold_dev: sentences[dev_from:]}


def create_tagging_demo_project() -> int:
    """The project, its entity types those the corpus uses, with both datasets imported."""
    parts = demo_sentences()
    types = sorted(
        {s.label for part in parts.values() for sentence in part for s in sentence.spans}
    )
    with session_scope() as session:
        project = create_project(session, PROJECT_NAME, types, task_kind=TaskKind.sequence_tagging)
        for kind, part in parts.items():
            data = write_conll(part).encode()
            import_dataset(session, project, data, f"news_en_{kind}.conll", kind)
        return project.id
