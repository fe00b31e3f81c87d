"""`assay demo --task survival` end to end with a real worker: a trained survival project whose
records are gbsg2's, the corrupted ones exactly those the demo says (a censoring made an event,
or an event dated later) and every other one as recorded, and a report of how many the queue
puts first that counts them right."""

from __future__ import annotations

import csv
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from tests.support import assay_env

pytestmark = pytest.mark.slow
DEV, CORRUPTED = 100, 24


def test_survival_demo_builds_a_trained_project(tmp_path):
    from app.cli.demo_survival import DATA_FILE, SHIFT
    from app.kinds.survival.annotation import decode

    settings = {"survival_demo_dev": str(DEV), "survival_demo_corrupted": str(CORRUPTED)}
    with assay_env(tmp_path, **settings):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "demo", "--no-serve", "--task", "survival"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        found = re.search(
            r"(\d+) silver records, (\d+) of them corrupted .*; the queue's first (\d+) "
            r"hold (\d+) \(random: about ([\d.]+)\)",
            result.stdout,
        )
        assert found, result.stdout

        from app.core.db import session_scope
        from app.models import Item, Job, JobState

        with DATA_FILE.open(newline="") as handle:
            recorded = {str(i): row for i, row in enumerate(csv.DictReader(handle), 1)}
        with session_scope() as session:
            assert [j.state for j in session.scalars(select(Job))] == [JobState.succeeded]
            items = session.scalars(select(Item).order_by(Item.id)).all()
        silver = [i for i in items if i.dataset_kind == "silver"]
        dev = [i for i in items if i.dataset_kind == "gold_dev"]
        assert (len(silver), len(dev)) == (len(recorded) - DEV, DEV) and len(silver) == int(
            found.group(1)
        )
        wrong = []
        for item in [*silver, *dev]:
            duration, event = decode(item.silver_label or item.gold_label)
            truth = recorded[item.external_id]
            if (duration, event) == (float(truth["time"]), int(truth["cens"])):
                continue
            wrong.append(item)
            if truth["cens"] == "0":  # a censoring made an event
                assert (duration, event) == (float(truth["time"]), 1)
            else:  # an event dated later
                assert (duration, event) == (round(float(truth["time"]) * SHIFT, 1), 1)
        assert all(i.dataset_kind == "silver" for i in wrong)  # the gold dev set is as recorded
        assert len(wrong) == CORRUPTED == int(found.group(2))
        top = int(found.group(3))
        assert top == len(silver) // 10
        assert sum(i.queue_rank <= top for i in wrong) == int(found.group(4))
        assert sorted(i.queue_rank for i in silver) == list(range(1, len(silver) + 1))
