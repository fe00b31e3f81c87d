"""Celery configured from app.core.config; the web process imports this to enqueue by task name.

Importing it does not import the tasks (and so not torch): only a worker loads ``workers.tasks``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from celery import Celery

from app.core.config import Settings, get_settings

TRAIN_AND_SCORE = "assay.train_and_score"
IMPORT_DATASET = "assay.import_dataset"  # streamed import of an uploaded file (light queue)
EMBED_SHARD = "assay.embed_shard"
FIT_SHARDED = "assay.fit_sharded"
SCORE_SHARD = "assay.score_shard"
MERGE_SHARDS = "assay.merge_shards"

# Heavy tasks want the GPU workers; light ones (and any task not named here) the others.
HEAVY_TASKS = (TRAIN_AND_SCORE, EMBED_SHARD, FIT_SHARDED, SCORE_SHARD)
LIGHT_TASKS = (IMPORT_DATASET, MERGE_SHARDS)


def routing(settings: Settings) -> dict:
    """Queues by task name, and the result backend that chords need (when there is one)."""
    routes = {name: {"queue": settings.heavy_queue} for name in HEAVY_TASKS}
    routes.update({name: {"queue": settings.light_queue} for name in LIGHT_TASKS})
    config: dict = {"task_routes": routes, "task_default_queue": settings.light_queue}
    if settings.celery_result_backend:
        config["result_backend"] = settings.celery_result_backend
    return config


@lru_cache
def _celery(broker_url: str, broker_dir: Path) -> Celery:
    celery = Celery(
        "assay",
        broker=broker_url,
        include=["workers.tasks"],
    )
    celery.conf.update(
        task_ignore_result=True,  # job state lives in the database, not a result backend
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    celery.conf.update(routing(get_settings()))  # the cache is cleared when settings change
    if broker_url.startswith(("redis", "rediss")):
        # a message whose worker died unacknowledged comes back after this (Redis default 1 h)
        celery.conf.broker_transport_options = {
            "visibility_timeout": get_settings().broker_visibility_timeout_s
        }
    if broker_url.startswith("filesystem"):
        folders = {name: broker_dir / name for name in ("queue", "control", "processed")}
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        celery.conf.broker_transport_options = {
            "data_folder_in": str(folders["queue"]),
            "data_folder_out": str(folders["queue"]),
            "control_folder": str(folders["control"]),
            "processed_folder": str(folders["processed"]),
            "store_processed": False,
        }
    return celery


def current_celery() -> Celery:
    """The Celery app for the current settings (tests switch settings between runs)."""
    settings = get_settings()
    return _celery(settings.celery_broker_url, settings.broker_dir)


celery_app = current_celery()  # what `celery -A workers.celery_app worker` loads
