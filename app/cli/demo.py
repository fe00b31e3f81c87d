"""``assay demo``: a real project from bundled data, trained and scored: Rotten Tomatoes
reviews (text classification), or English news sentences with silver entities
(``--task sequence_tagging``, ``app.demo_tagging``)."""

from __future__ import annotations

import csv
import gzip
import io
import random
import secrets
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from app.cli.demo_ranking import PROJECT_NAME as RANKING_PROJECT_NAME
from app.cli.demo_ranking import create_ranking_demo_project, ranking_report
from app.cli.demo_survival import PROJECT_NAME as SURVIVAL_PROJECT_NAME
from app.cli.demo_survival import create_survival_demo_project, survival_report
from app.cli.demo_tagging import PROJECT_NAME as TAGGING_PROJECT_NAME
from app.cli.demo_tagging import create_tagging_demo_project
from app.cli.worker_process import start_worker
from app.core.auth import create_user, password_hash
from app.core.config import get_settings
from app.core.db import migrate, session_scope
from app.kinds import TaskKind
from app.models import DatasetKind, Item, Job, JobState, Project, Role, User
from app.services.datasets import import_dataset
from app.services.items import list_items
from app.services.jobs import start_train_score
from app.services.projects import create_project

DATA_FILE = Path(__file__).parents[1] / "demo_data" / "rotten_tomatoes_silver.csv.gz"
PROJECT_NAME = "Rotten Tomatoes (demo)"
ADMIN = "admin"
LABELS = ["fresh", "rotten"]
TOP = 100


def _split(rows: list[dict]) -> dict[DatasetKind, list[dict]]:
    settings = get_settings()
    random.Random(settings.demo_seed).shuffle(rows)
    a = settings.demo_gold_train
    b = a + settings.demo_extension
    c = b + settings.demo_dev
    return {
        DatasetKind.gold_train: rows[:a],
        DatasetKind.extension: rows[a:b],
        DatasetKind.gold_dev: rows[b:c],
        DatasetKind.test: rows[c:],
    }


def _csv_bytes(rows: list[dict], kind: DatasetKind) -> bytes:
    """The extension carries VADER's silver label; the gold one rides along for measuring only."""
    out = io.StringIO()
    writer = csv.writer(out)
    if kind == DatasetKind.extension:
        writer.writerow(["id", "text", "label", "reference_label"])
        writer.writerows([r["id"], r["text"], r["silver_label"], r["label"]] for r in rows)
    else:
        writer.writerow(["id", "text", "label"])
        writer.writerows([r["id"], r["text"], r["label"]] for r in rows)
    return out.getvalue().encode()


def _admin_login() -> str:
    """A fresh random password for the demo admin, so the demo never ships a known one."""
    password = secrets.token_urlsafe(9)
    with session_scope() as session:
        admin = session.scalar(select(User).where(User.username == ADMIN))
        if admin is None:
            create_user(session, ADMIN, password, Role.admin)
        else:
            admin.password_hash = password_hash.hash(password)
    return password


def create_demo_project() -> int:
    """The demo's project, imported with its datasets (the sizes are ``ASSAY_DEMO_*``)."""
    with gzip.open(DATA_FILE, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with session_scope() as session:
        project = create_project(session, PROJECT_NAME, LABELS)
        for kind, part in _split(rows).items():
            import_dataset(
                session, project, _csv_bytes(part, kind), f"rotten_tomatoes_{kind}.csv", kind
            )
        return project.id


def _wait(job_id: int, worker: subprocess.Popen, progress: Callable[[float, str], None]) -> Job:
    while True:
        with session_scope() as session:
            job = session.get(Job, job_id)
        progress(job.progress, job.stage)
        if job.state not in (JobState.queued, JobState.running):
            return job
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited (code {worker.returncode}); see worker.log")
        time.sleep(1.0)


def queue_quality(project_id: int, top: int = TOP) -> tuple[float, float]:
    """Share of wrong silver labels among the queue's first ``top`` items, and in the extension."""
    with session_scope() as session:
        project = session.get(Project, project_id)
        wrong = Item.silver_label != Item.reference_label
        ext = (Item.project_id == project_id) & (Item.dataset_kind == DatasetKind.extension.value)
        total = session.scalar(select(func.count()).where(ext))
        wrong_total = session.scalar(select(func.count()).where(ext & wrong))
        views, _ = list_items(session, project, order="suspicion", limit=top * 3, cursor=None)
        queued = [v.item for v in views if v.item.dataset_kind in ("extension", "silver")][:top]
        share_top = sum(i.silver_label != i.reference_label for i in queued) / max(len(queued), 1)
    return share_top, wrong_total / max(total, 1)


def _classification_report(project_id: int) -> str:
    share_top, share_all = queue_quality(project_id)
    return (
        f"wrong silver labels: {share_top:.1%} of the queue's first {TOP} items vs "
        f"{share_all:.1%} of the extension set ({share_top / max(share_all, 1e-9):.1f}x)"
    )


def _tagging_report(project_id: int) -> str:
    with session_scope() as session:
        counts = dict(
            session.execute(
                select(Item.dataset_kind, func.count())
                .where(Item.project_id == project_id)
                .group_by(Item.dataset_kind)
            ).all()
        )
    return (
        f"{counts.get(DatasetKind.silver.value, 0)} silver sentences (spaCy's tags) in the queue,"
        f" most suspicious span first; {counts.get(DatasetKind.gold_dev.value, 0)} dev sentences"
        " (the corpus's last, their silver tags taken as gold)"
    )


@dataclass(frozen=True)
class Demo:
    name: str  # the project's
    importing: str  # what the import step says
    create: Callable[[], int]  # imports the project, returns its id
    report: Callable[[int], str]  # a line on the trained project


DEMOS = {
    TaskKind.text_classification: Demo(
        PROJECT_NAME,
        "importing Rotten Tomatoes: gold train, VADER-silver extension, gold dev, test",
        create_demo_project,
        _classification_report,
    ),
    TaskKind.sequence_tagging: Demo(
        TAGGING_PROJECT_NAME,
        "importing English news sentences: spaCy-silver entities, and the last sentences as dev",
        create_tagging_demo_project,
        _tagging_report,
    ),
    TaskKind.survival: Demo(
        SURVIVAL_PROJECT_NAME,
        "importing gbsg2 follow-up records: silver (a few corrupted) and gold dev",
        create_survival_demo_project,
        survival_report,
    ),
    TaskKind.ranking: Demo(
        RANKING_PROJECT_NAME,
        "importing MSLR web-search judgments: silver (a few wrong grades) and gold dev queries",
        create_ranking_demo_project,
        ranking_report,
    ),
}


def run_demo(
    url: str,
    echo: Callable[[str], None],
    progress: Callable[[float, str], None],
    serve_command: str | None = None,
    task: TaskKind = TaskKind.text_classification,
) -> subprocess.Popen:
    """Set everything up through the real services and a real worker; returns the worker.
    ``serve_command``: the command that serves it, when the caller does not serve right away."""
    settings = get_settings()
    demo = DEMOS[task]
    migrate()
    password = _admin_login()
    with session_scope() as session:
        existing = session.scalar(select(Project.id).where(Project.name == demo.name))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    worker = start_worker(settings.data_dir / "worker.log")
    if existing is None:
        echo(demo.importing)
        project_id = demo.create()
        with session_scope() as session:
            job = start_train_score(session, session.get(Project, project_id))
        echo(f"training and scoring on a worker (job {job.id})")
        job = _wait(job.id, worker, progress)
        echo("")
        if job.state != JobState.succeeded:
            raise RuntimeError(f"job {job.id} {job.state}: {job.error}")
    else:
        project_id = existing
        echo("the demo project exists already: reusing it")
    echo(demo.report(project_id))
    where = f"{url}/projects/{project_id}/queue and log in as {ADMIN} / {password}"
    if serve_command:  # nothing serves yet: the URL alone would not open
        echo(f"the demo is ready but not served: run `{serve_command}`, then open {where}")
    else:
        echo(f"open {where}")
    return worker
