"""The text-classification training job: the project's labelled texts in, a stored model
version out; scored whole here, or in shards over the workers (``sharded_job``)."""

from __future__ import annotations

from app.core.config import Settings
from app.core.db import session_scope
from app.models import Job, Project
from app.services.job_lease import Lease, mark_failed
from app.services.jobs import progress_reporter
from app.services.projects import estimator_of
from app.services.training_data import NotEnoughData, load_training_data
from workers.kinds.text_classification import sharded_job, sharding
from workers.kinds.text_classification.pipeline import score_texts
from workers.kinds.text_classification.results import store_results


def train_and_score(lease: Lease, settings: Settings) -> None:
    """Train the head on the project's current labels, score every training item, store."""
    job_id = lease.job_id
    with session_scope() as session:
        job = session.get(Job, job_id)
        project = session.get(Project, job.project_id)
        estimator = estimator_of(project)
        try:
            data = load_training_data(session, project)
        except NotEnoughData as err:
            mark_failed(lease, str(err))
            return
    report = progress_reporter(job_id, settings.job_progress_interval_s, lease)
    report(0.0, "embedding")
    if sharding.applies(settings, estimator, len(data.train_ids)):
        output = sharded_job.start(lease, settings, job.project_id, data, estimator, report)
        if output is None:
            return  # the shard tasks go on; the merge stores the results
    else:
        output = score_texts(
            data.train_texts,
            data.train_y,
            len(data.labels),
            settings,
            estimator=estimator,
            train_ids=data.train_ids,
            dev_texts=data.dev_texts,
            dev_y=data.dev_y,
            test_texts=data.test_texts,
            test_y=data.test_y,
            prunable=data.train_unreviewed_silver,
            progress=report,
        )
    report(0.99, "storing")
    store_results(lease, settings, job.project_id, data, output)
