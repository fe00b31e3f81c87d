"""Store a dataset file's rows as a project's datasets, streamed in batches, in one transaction
with the caller's session (so a bad row anywhere stores nothing)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.config import get_settings
from app.models import Dataset, DatasetKind, Item, ItemStatus, Project, utcnow
from app.services.ingest import IngestError, Row, iter_rows

SPLIT_KINDS = {"dev": DatasetKind.gold_dev, "test": DatasetKind.test}
GOLD_KINDS = (DatasetKind.gold_train, DatasetKind.gold_dev, DatasetKind.test)
COPY_COLUMNS = (
    "project_id",
    "dataset_id",
    "dataset_kind",
    "external_id",
    "text",
    "payload",
    "silver_label",
    "gold_label",
    "reference_label",
    "current_label",
    "status",
    "updated_at",
)
Progress = Callable[[float, str], None]


def import_dataset(
    session: Session,
    project: Project,
    source: Path | bytes,
    filename: str,
    kind: DatasetKind,
    *,
    max_rows: int | None = None,
    progress: Progress | None = None,
) -> list[Dataset]:
    """Parse and add a file (a path on disk, or bytes for small ones); rows with a ``split``
    column of dev/test go to those datasets. The caller commits, or rolls back on error."""
    check_filename(filename)
    binary = io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
    with binary:
        size = max(len(source) if isinstance(source, bytes) else source.stat().st_size, 1)
        rows = iter_rows(binary, filename, labels=project.labels, max_rows=max_rows)

        def report() -> None:
            if progress is not None:
                progress(min(binary.tell() / size, 1.0), "importing")

        return _ItemWriter(session, project, filename, kind).write(rows, report)


def check_filename(filename: str) -> None:
    """The name is stored with the dataset: refuse one its column cannot hold."""
    longest = Dataset.__table__.c.source_filename.type.length
    if len(filename) > longest:
        raise IngestError(filename, None, None, f"file name longer than {longest} characters")
    if "\x00" in filename:
        raise IngestError(filename, None, None, "file name contains a NUL character")


class _ItemWriter:
    """Inserts rows in batches of ``ASSAY_IMPORT_BATCH_ROWS``: PostgreSQL ``COPY`` through the
    session's own connection (same transaction), else a multi-row INSERT."""

    def __init__(self, session: Session, project: Project, filename: str, kind: DatasetKind):
        self.session, self.project, self.filename, self.kind = session, project, filename, kind
        self.datasets: dict[DatasetKind, Dataset] = {}
        self.batch: list[tuple] = []
        self.batch_rows = get_settings().import_batch_rows
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.now = utcnow()

    def write(self, rows: Iterable[Row], report: Callable[[], None]) -> list[Dataset]:
        for row in rows:
            self.batch.append(self._values(row))
            if len(self.batch) >= self.batch_rows:
                self._flush()
                report()
        self._flush()
        report()
        self.session.flush()
        return list(self.datasets.values())

    def _dataset(self, kind: DatasetKind) -> Dataset:
        dataset = self.datasets.get(kind)
        if dataset is None:
            dataset = Dataset(
                project_id=self.project.id, kind=kind, source_filename=self.filename, row_count=0
            )
            self.session.add(dataset)
            self.session.flush()
            self.datasets[kind] = dataset
        dataset.row_count += 1
        return dataset

    def _values(self, row: Row) -> tuple:
        kind = SPLIT_KINDS.get(row.split or "", self.kind)
        gold = kind in GOLD_KINDS
        return (
            self.project.id,
            self._dataset(kind).id,
            kind.value,
            row.external_id,
            row.text,
            row.extra,
            None if gold else row.label,
            row.label if gold else None,
            row.reference_label,
            row.label,
            ItemStatus.reviewed.value if gold else ItemStatus.pending.value,
            self.now,
        )

    def _flush(self) -> None:
        if not self.batch:
            return
        if self.postgres:
            cursor = self.session.connection().connection.driver_connection.cursor()
            with cursor.copy(f"COPY items ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                for values in self.batch:
                    copy.write_row((*values[:5], json.dumps(values[5]), *values[6:]))
        else:
            self.session.execute(
                insert(Item), [dict(zip(COPY_COLUMNS, v, strict=True)) for v in self.batch]
            )
        self.batch = []
