"""`assay demo --task sequence_tagging` end to end at a reduced size (60 silver sentences, the
corpus's last 20 as dev), with a real worker: a trained sequence-tagging project whose silver
sentences are ranked, and a login."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from tests.support import assay_env

pytestmark = pytest.mark.slow
TRAIN, DEV = 60, 20


def test_ner_demo_builds_a_trained_project(tmp_path):
    from app.cli.demo_tagging import DATA_FILE

    # assay_env sets the child's environment too (ASSAY_* of the caller removed)
    with assay_env(tmp_path, demo_ner_train=str(TRAIN), demo_ner_dev=str(DEV)):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "demo", "--no-serve", "--task", "sequence_tagging"],
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        print(result.stdout)
        assert f"{TRAIN} silver sentences" in result.stdout
        assert f"{DEV} dev sentences" in result.stdout
        assert re.search(r"/projects/\d+/queue and log in as admin / \S+", result.stdout)

        from app.core.db import session_scope
        from app.kinds.sequence_tagging.formats import read_conll
        from app.models import Item, Job, JobState, Project

        with gzip.open(DATA_FILE, "rt", encoding="utf-8") as handle:
            corpus = read_conll(handle, DATA_FILE.name, max_tokens=1000).sentences
        with session_scope() as session:
            project = session.scalars(select(Project)).one()
            assert project.task_kind == "sequence_tagging"
            items = session.scalars(select(Item).order_by(Item.id)).all()
            jobs = session.scalars(select(Job)).all()
            assert [job.state for job in jobs] == [JobState.succeeded]
            silver = [i for i in items if i.dataset_kind == "silver"]
            dev = [i for i in items if i.dataset_kind == "gold_dev"]
            assert [i.payload["tokens"] for i in silver] == [list(s.tokens) for s in corpus[:TRAIN]]
            assert [i.payload["tokens"] for i in dev] == [list(s.tokens) for s in corpus[-DEV:]]
            assert sorted(i.queue_rank for i in silver) == list(range(1, TRAIN + 1))
