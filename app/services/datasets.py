"""Store a dataset file's rows as a project's datasets, streamed in batches, in one transaction
with the caller's session (so a bad row anywhere stores nothing).

External ids are the project's: a file whose ids are already in the project is refused unless
the caller says what to do (``ImportMode``). Each batch's ids are looked up with one query, so
a file of any size is checked without loading the project's ids."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.text import excerpt
from app.kinds.errors import FormatError
from app.kinds.registry import spec_of
from app.kinds.rows import Row
from app.models import (
    Dataset,
    DatasetKind,
    EventSource,
    Item,
    ItemStatus,
    LabelEvent,
    Project,
    utcnow,
)

SPLIT_KINDS = {"dev": DatasetKind.gold_dev, "test": DatasetKind.test}
GOLD_KINDS = (DatasetKind.gold_train, DatasetKind.gold_dev, DatasetKind.test)
COPY_COLUMNS = (
    "project_id",
    "dataset_id",
    "dataset_kind",
    "external_id",
    "group_key",
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


class ImportMode(StrEnum):
    """What to do with a row whose id is already in the project."""

    refuse = "refuse"  # the default: the whole file is refused, naming the first such id
    replace = "replace"  # update the item's text and label (a label event ``import``)
    skip = "skip"  # keep the item as it is; only new ids are added


def import_dataset(
    session: Session,
    project: Project,
    source: Path | bytes,
    filename: str,
    kind: DatasetKind,
    *,
    max_rows: int | None = None,
    progress: Progress | None = None,
    mode: ImportMode = ImportMode.refuse,
) -> list[Dataset]:
    """Parse and add a file (a path on disk, or bytes for small ones); rows with a ``split``
    column of dev/test go to those datasets. The caller commits, or rolls back on error."""
    check_filename(filename)
    binary = io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
    with binary:
        size = max(len(source) if isinstance(source, bytes) else source.stat().st_size, 1)
        read_rows = spec_of(project).read_rows
        rows = read_rows(binary, filename, labels=project.labels, max_rows=max_rows)

        def report() -> None:
            if progress is not None:
                progress(min(binary.tell() / size, 1.0), "importing")

        return _ItemWriter(session, project, filename, kind, mode).write(rows, report)


def check_filename(filename: str) -> None:
    """The name is stored with the dataset: refuse one its column cannot hold."""
    longest = Dataset.__table__.c.source_filename.type.length
    if len(filename) > longest:
        raise FormatError(filename, None, None, f"file name longer than {longest} characters")
    if "\x00" in filename:
        raise FormatError(filename, None, None, "file name contains a NUL character")


class _ItemWriter:
    """Inserts rows in batches of ``ASSAY_IMPORT_BATCH_ROWS``: PostgreSQL ``COPY`` through the
    session's own connection (same transaction), else a multi-row INSERT."""

    def __init__(
        self,
        session: Session,
        project: Project,
        filename: str,
        kind: DatasetKind,
        mode: ImportMode = ImportMode.refuse,
    ):
        self.session, self.project, self.filename, self.kind = session, project, filename, kind
        self.mode = mode
        self.datasets: dict[DatasetKind, Dataset] = {}
        self.batch: list[Row] = []
        self.batch_rows = get_settings().import_batch_rows
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.now = utcnow()

    def write(self, rows: Iterable[Row], report: Callable[[], None]) -> list[Dataset]:
        for row in rows:
            self.batch.append(row)
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
            row.group,
            row.text,
            row.extra,
            None if gold else row.label,
            row.label if gold else None,
            row.reference_label,
            row.label,
            ItemStatus.reviewed.value if gold else ItemStatus.pending.value,
            self.now,
        )

    def _existing(self, rows: list[Row]) -> dict[str, tuple[Item, str]]:
        """The project's items (and their file) with these rows' ids, from earlier imports.
        Only ids the file gives count: rows without one are numbered within their file."""
        ids = {row.external_id for row in rows if row.id_given}
        if not ids:
            return {}
        query = (
            select(Item, Dataset.source_filename)
            .join(Dataset, Dataset.id == Item.dataset_id)
            .where(
                Item.project_id == self.project.id,
                Item.external_id.in_(ids),
            )
        )
        if self.datasets:  # this file's own earlier batches are not a re-import
            query = query.where(Item.dataset_id.not_in([d.id for d in self.datasets.values()]))
        return {item.external_id: (item, name) for item, name in self.session.execute(query)}

    def _refuse(self, row: Row, source_filename: str) -> FormatError:
        limit = get_settings().error_excerpt_chars
        return FormatError(
            self.filename,
            row.line,
            "id",
            f"id '{excerpt(row.external_id, limit)}' (line {row.line}) is already in the project"
            f" (dataset '{excerpt(source_filename, limit)}'); choose mode=replace or mode=skip"
            " (assay import --replace or --skip)",
        )

    def _replace(self, item: Item, row: Row) -> None:
        """The row's text and label onto the existing item; a changed label is a label event
        ``import`` (the history keeps the earlier one). A person's decision on a silver item
        stays its current label; the silver label underneath is updated."""
        item.text, item.payload, item.reference_label = row.text, row.extra, row.reference_label
        item.group_key = row.group
        gold = item.dataset_kind in GOLD_KINDS
        if row.label == (item.gold_label if gold else item.silver_label):
            return
        before = item.current_label
        if gold:
            item.gold_label = item.current_label = row.label
        else:
            item.silver_label = row.label
            if item.status == ItemStatus.pending:
                item.current_label = row.label
        which = "gold" if gold else "silver"
        self.session.add(
            LabelEvent(
                item_id=item.id,
                source=EventSource.imported,
                old_label=before,
                new_label=item.current_label,
                reason=f"re-import of {self.filename}: {which} label {row.label}",
            )
        )

    def _keep_new(self, rows: list[Row]) -> list[Row]:
        """The rows to insert; the others are refused, replaced or skipped as the mode says."""
        existing = self._existing(rows)  # ids are unique in a file: none given is a number too
        if not existing:
            return rows
        if self.mode == ImportMode.refuse:
            first = next(row for row in rows if row.external_id in existing)
            raise self._refuse(first, existing[first.external_id][1])
        if self.mode == ImportMode.replace:
            for row in rows:
                if row.external_id in existing:
                    self._replace(existing[row.external_id][0], row)
        return [row for row in rows if row.external_id not in existing]

    def _flush(self) -> None:
        if not self.batch:
            return
        rows, self.batch = [self._values(row) for row in self._keep_new(self.batch)], []
        if not rows:
            return
        if self.postgres:
            cursor = self.session.connection().connection.driver_connection.cursor()
            with cursor.copy(f"COPY items ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
                for values in rows:
                    copy.write_row((*values[:6], json.dumps(values[6]), *values[7:]))
        else:
            self.session.execute(
                insert(Item), [dict(zip(COPY_COLUMNS, v, strict=True)) for v in rows]
            )
