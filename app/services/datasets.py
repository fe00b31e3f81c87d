"""Store parsed rows as a project's datasets, in one transaction with the caller's session."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.models import Dataset, DatasetKind, Item, ItemStatus, Project
from app.services.ingest import Row, parse_dataset

SPLIT_KINDS = {"dev": DatasetKind.gold_dev, "test": DatasetKind.test}
GOLD_KINDS = (DatasetKind.gold_train, DatasetKind.gold_dev, DatasetKind.test)
INSERT_CHUNK = 5000


def import_dataset(
    session: Session,
    project: Project,
    data: bytes,
    filename: str,
    kind: DatasetKind,
    *,
    max_rows: int | None = None,
) -> list[Dataset]:
    """Parse and add a file; rows with a ``split`` column of dev/test go to those datasets.

    Nothing is flushed until the whole file has parsed, so a bad row stores nothing; the
    caller commits.
    """
    rows = parse_dataset(data, filename, labels=project.labels, max_rows=max_rows)
    groups: dict[DatasetKind, list[Row]] = defaultdict(list)
    for row in rows:
        groups[SPLIT_KINDS.get(row.split or "", kind)].append(row)
    datasets = []
    for group_kind, group_rows in groups.items():
        dataset = Dataset(
            project_id=project.id,
            kind=group_kind,
            source_filename=filename,
            row_count=len(group_rows),
        )
        session.add(dataset)
        session.flush()
        gold = group_kind in GOLD_KINDS
        values = [
            {
                "project_id": project.id,
                "dataset_id": dataset.id,
                "dataset_kind": group_kind.value,
                "external_id": row.external_id,
                "text": row.text,
                "payload": row.extra,
                "silver_label": None if gold else row.label,
                "gold_label": row.label if gold else None,
                "reference_label": row.reference_label,
                "current_label": row.label,
                "status": ItemStatus.reviewed if gold else ItemStatus.pending,
            }
            for row in group_rows
        ]
        for start in range(0, len(values), INSERT_CHUNK):
            session.execute(insert(Item), values[start : start + INSERT_CHUNK])
        datasets.append(dataset)
    return datasets
