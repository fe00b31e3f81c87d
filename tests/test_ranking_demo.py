"""`assay demo --task ranking` end to end at a reduced size (4 MSLR queries each side, 20 wrong
grades), with a real worker: a trained ranking project whose judgments are the sample's, the
wrong ones exactly those the demo flipped, and a report of how many the queue puts first."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from tests.support import assay_env

pytestmark = pytest.mark.slow
QUERIES, FLIPPED = 4, 20


def test_ranking_demo_builds_a_trained_project(tmp_path):
    from app.cli.demo_ranking import DATA_DIR

    with assay_env(tmp_path, ranking_demo_queries=str(QUERIES), ranking_demo_flipped=str(FLIPPED)):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "demo", "--no-serve", "--task", "ranking"],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        found = re.search(
            r"(\d+) silver judgments, (\d+) of them with a wrong grade; the queue's first (\d+) "
            r"hold (\d+) \(random: about ([\d.]+)\)",
            result.stdout,
        )
        assert found, result.stdout
        assert re.search(r"/projects/\d+/queue and log in as admin / \S+", result.stdout)

        from app.core.db import session_scope
        from app.models import Item, Job, JobState

        sample = gzip.decompress((DATA_DIR / "mslr_sample_train.svmlight.gz").read_bytes())
        lines = sample.decode().splitlines()
        qids = list(dict.fromkeys(line.split()[1] for line in lines))[:QUERIES]
        original = [line for line in lines if line.split()[1] in qids]
        with session_scope() as session:
            assert [j.state for j in session.scalars(select(Job))] == [JobState.succeeded]
            silver = session.scalars(
                select(Item).where(Item.dataset_kind == "silver").order_by(Item.id)
            ).all()
        assert len(silver) == len(original) == int(found.group(1))
        wrong = [
            (item, line)
            for item, line in zip(silver, original, strict=True)
            if item.silver_label != line.split()[0]
        ]
        assert len(wrong) == FLIPPED == int(found.group(2))
        for item, line in wrong:  # relevant judged 0, irrelevant judged 4
            assert item.silver_label == ("0" if int(line.split()[0]) >= 2 else "4")
        top = int(found.group(3))
        in_top = sum(item.queue_rank <= top for item, _ in wrong)
        assert in_top == int(found.group(4)) and in_top > float(found.group(5))
