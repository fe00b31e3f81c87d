"""The ``assay`` command: serve, worker, demo, score, user, token and member management."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import click

from app.core.config import ConfigError, get_settings
from app.kinds import TaskKind
from app.kinds.estimators import ESTIMATORS
from app.models import DatasetKind


@click.group()
def main() -> None:
    """Assay: find the wrong labels in a silver dataset by training-data influence."""


@main.command()
@click.option("--host", default=None, help="default: ASSAY_HOST or 127.0.0.1")
@click.option("--port", default=None, type=int, help="default: ASSAY_PORT or 8000")
@click.option(
    "--worker/--no-worker",
    default=None,
    help="start a worker beside the server (default: only in embedded mode)",
)
def serve(host: str | None, port: int | None, worker: bool | None) -> None:
    """Migrate the database and run the web server (plus a worker when embedded)."""
    settings = get_settings()
    _check_config()
    from app.core.db import migrate

    migrate()
    _serve(
        host or settings.host,
        port or settings.port,
        settings.embedded if worker is None else worker,
    )


def _check_config() -> None:
    try:
        get_settings().resolved_secret_key()
    except ConfigError as err:
        raise click.ClickException(str(err)) from None


def _serve(host: str, port: int, with_worker: bool, worker_process=None) -> None:
    import uvicorn

    from app.cli.worker_process import start_worker, stop_worker
    from app.main import create_app

    settings = get_settings()
    if with_worker and worker_process is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        worker_process = start_worker(settings.data_dir / "worker.log")
        click.echo(
            f"worker started (pid {worker_process.pid}, log {settings.data_dir / 'worker.log'})"
        )
    # X-Forwarded-For/-Proto only from ASSAY_TRUSTED_PROXIES: uvicorn's default trusts 127.0.0.1
    # (or FORWARDED_ALLOW_IPS), which would let any local client pick the address that the
    # login limit counts. With no trusted proxy the headers are ignored altogether.
    proxies = {
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }
    try:
        if settings.web_workers > 1:  # separate processes: the factory runs in each
            uvicorn.run(
                "app.main:migrated_app",
                factory=True,
                workers=settings.web_workers,
                host=host,
                port=port,
                log_level="info",
                **proxies,
            )
        else:
            uvicorn.run(
                create_app(run_migrations=False), host=host, port=port, log_level="info", **proxies
            )
    finally:
        if worker_process is not None:
            stop_worker(worker_process)


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--concurrency", default=1, show_default=True)
@click.option("--pool", default="solo", show_default=True, help="solo | prefork | threads")
@click.option(
    "--queues",
    default=None,
    help="comma-separated queues to consume (default: ASSAY_HEAVY_QUEUE and ASSAY_LIGHT_QUEUE)",
)
@click.argument("celery_args", nargs=-1, type=click.UNPROCESSED)
def worker(concurrency: int, pool: str, queues: str | None, celery_args: tuple[str, ...]) -> None:
    """Run a Celery worker in the foreground (production: one per machine or GPU).

    Training and scoring go to the heavy queue, imports and merges to the light one: give GPU
    machines ``--queues heavy`` and small ones ``--queues light``.
    """
    import os

    from app.cli.worker_process import worker_command

    command = worker_command(concurrency=concurrency, pool=pool, queues=queues) + list(celery_args)
    os.execv(command[0], command)


@main.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from app.core.db import migrate as run

    run()
    click.echo(f"database at newest revision: {get_settings().sqlalchemy_url.split('@')[-1]}")


@main.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["admin", "annotator", "reviewer"]),
    default="annotator",
    show_default=True,
)
@click.password_option(help="prompted for when not given")
def user_create(username: str, role: str, password: str) -> None:
    """Create USERNAME (the password policy applies, as on the admin page)."""
    from app.core.db import migrate, session_scope
    from app.services.users import UserError, add_user

    migrate()
    try:
        with session_scope() as session:
            add_user(session, username, password, role)
    except UserError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"created {role} '{username}'")


@user.command("set-password")
@click.argument("username")
@click.password_option(help="prompted for when not given")
def user_set_password(username: str, password: str) -> None:
    """Give USERNAME a new password (the password policy applies); ends all their sessions."""
    from sqlalchemy import select

    from app.core.db import migrate, session_scope
    from app.models import User
    from app.services.users import UserError, set_password

    migrate()
    try:
        with session_scope() as session:
            account = session.scalar(select(User).where(User.username == username))
            if account is None:
                raise click.ClickException(f"no user '{username}'")
            set_password(account, password)
    except UserError as err:
        raise click.ClickException(str(err)) from None
    click.echo(f"new password set for '{username}'; their sessions have ended")


@main.group()
def token() -> None:
    """Manage API tokens."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="cli", show_default=True)
def token_create(username: str, name: str) -> None:
    """Print a new API token for USERNAME (shown once; only its hash is stored)."""
    from sqlalchemy import select

    from app.core.auth import issue_token
    from app.core.db import session_scope
    from app.models import User

    with session_scope() as session:
        account = session.scalar(select(User).where(User.username == username))
        if account is None:
            raise click.ClickException(f"no user '{username}'")
        click.echo(issue_token(session, account, name))


@main.command()
@click.argument("train", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--dev",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="gold dev set (CSV/JSONL); ranks by harm to its loss",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--estimator",
    type=click.Choice(list(ESTIMATORS)),
    default=None,
    help="ranking (default: ASSAY_DEFAULT_ESTIMATOR, the best measured); text classification",
)
@click.option(
    "--task",
    type=click.Choice([k.value for k in TaskKind]),
    default=TaskKind.text_classification.value,
    show_default=True,
    help="sequence_tagging: TRAIN/DEV are CoNLL (.conll/.txt/.iob) or JSONL (.jsonl) sentences",
)
@click.option("--duration", help="survival: the duration column of TRAIN/DEV (required)")
@click.option("--event", help="survival: the event column, 1/0 (required)")
def score(
    train: Path,
    dev: Path | None,
    out: Path,
    estimator: str | None,
    task: str,
    duration: str | None,
    event: str | None,
) -> None:
    """Score TRAIN (CSV/JSONL: text, label[, id]) without a server; write one row per item.
    With --task sequence_tagging, one row per candidate span (labelled, or only predicted);
    with --task survival, one row per record of a CSV with --duration and --event columns."""
    from app.cli.score_ranking import score_ranking_files
    from app.cli.score_survival import score_survival_files
    from app.cli.scoring import score_files, score_tagging_files
    from app.kinds.errors import FormatError

    if task == TaskKind.sequence_tagging and estimator is not None:
        raise click.UsageError("--estimator applies to --task text_classification only")
    survival = task == TaskKind.survival
    if survival and (estimator is not None or not duration or not event):
        raise click.UsageError(
            "--task survival takes --duration COL and --event COL, no --estimator"
        )
    if not survival and (duration is not None or event is not None):
        raise click.UsageError("--duration and --event apply to --task survival only")
    progress = ProgressLine()
    fitted = None  # the model's settings and fit, or the ranking served and why
    try:
        if survival:
            n, fitted = score_survival_files(
                train, dev, out, duration=duration, event=event, progress=progress
            )
        elif task == TaskKind.ranking:
            n, fitted = score_ranking_files(train, dev, out, estimator=estimator, progress=progress)
        elif task == TaskKind.sequence_tagging:
            n = score_tagging_files(train, dev, out, progress=progress)
        else:
            n, fitted = score_files(train, dev, out, estimator=estimator, progress=progress)
        progress(1.0, "done")  # the pipeline's last report is its last stage, not the file
    except FormatError as err:  # every kind's reader raises this one type
        raise click.ClickException(str(err)) from None
    finally:
        progress.end()
    if fitted:
        click.echo(fitted)
    click.echo(f"wrote {n} rows to {out}")


@main.command("import")
@click.argument("project")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kind",
    type=click.Choice([k.value for k in DatasetKind]),
    default=DatasetKind.silver.value,
    show_default=True,
    help="rows with a split column of dev/test go to gold_dev/test",
)
@click.option("--replace", "mode", flag_value="replace", help="ids already in the project: update")
@click.option("--skip", "mode", flag_value="skip", help="ids already in the project: keep as is")
def import_file(project: str, file: Path, kind: str, mode: str | None) -> None:
    """Import FILE (CSV/JSONL: text, label[, id, split, reference_label]) into PROJECT (id or
    name), streamed from disk in one transaction: all rows or none, no upload size limit.
    A file with ids already in the project is refused unless --replace or --skip says what to do."""
    from app.core.db import migrate, session_scope
    from app.kinds.errors import FormatError
    from app.services.datasets import ImportMode, import_dataset

    migrate()
    progress = ProgressLine()
    try:
        with session_scope() as session:
            found = _find_project(session, project)  # before the file is opened at all
            datasets = import_dataset(
                session,
                found,
                file,
                file.name,
                DatasetKind(kind),
                progress=progress,
                mode=ImportMode(mode or ImportMode.refuse.value),
            )
            counts = ", ".join(f"{d.kind}: {d.row_count}" for d in datasets) or (
                "no new items: every id was already in the project"
                + ("; their texts and labels were replaced" if mode == "replace" else "")
            )
            project_id = found.id
    except FormatError as err:
        raise click.ClickException(f"{err} (nothing was imported)") from None
    finally:
        progress.end()  # the error or the summary starts on a line of its own
    click.echo(f"imported {file.name} into project {project_id} ({counts})")


def _find_project(session, ref: str):
    """A project by id (all digits) or by name, or a clear error."""
    from sqlalchemy import select

    from app.models import Project

    where = Project.id == int(ref) if ref.isdigit() else Project.name == ref
    found = session.scalars(select(Project).where(where)).all()
    if len(found) != 1:
        raise click.ClickException(f"{'no' if not found else 'more than one'} project '{ref}'")
    return found[0]


@main.group()
def member() -> None:
    """Manage project members (who may see and work on a project; admins see every one)."""


@member.command("add")
@click.argument("project")
@click.argument("username")
def member_add(project: str, username: str) -> None:
    """Make USERNAME a member of PROJECT (id or name); adding twice changes nothing."""
    from app.services.membership import add_member

    with _member_context(project, username) as (session, found, user):
        added = add_member(session, found, user, added_by=None)
    state = "added to" if added else "already a member of"
    click.echo(f"{username} {state} project {found.id} ({found.name})")


@member.command("remove")
@click.argument("project")
@click.argument("username")
def member_remove(project: str, username: str) -> None:
    """End USERNAME's access to PROJECT at once; the items they hold go back to the queue."""
    from app.services.membership import remove_member

    with _member_context(project, username) as (session, found, user):
        if not remove_member(session, found, user):
            raise click.ClickException(f"{username} is not a member of project {found.id}")
    click.echo(f"{username} removed from project {found.id} ({found.name})")


@member.command("list")
@click.argument("project")
def member_list(project: str) -> None:
    """PROJECT's members, one a line: username and role."""
    from app.core.db import migrate, session_scope
    from app.services.membership import members_of

    migrate()
    with session_scope() as session:
        for user in members_of(session, _find_project(session, project)):
            click.echo(f"{user.username}\t{user.role}")


@contextmanager
def _member_context(project: str, username: str):
    """A session with the project and the user found (or a clear error), committed after."""
    from app.core.db import migrate, session_scope
    from app.services.membership import NotFound, find_user

    migrate()
    with session_scope() as session:
        found = _find_project(session, project)
        try:
            user = find_user(session, username=username)
        except NotFound as err:
            raise click.ClickException(str(err)) from None
        yield session, found, user


class ProgressLine:
    """A progress line rewritten in place (``\\r``) on stderr; ``end()`` finishes it with a
    newline, so an error or summary printed next does not run into the percentage."""

    def __init__(self) -> None:
        self.open = False

    def __call__(self, fraction: float, stage: str) -> None:
        sys.stderr.write(f"\r{stage:<12} {fraction * 100:5.1f}%")
        sys.stderr.flush()
        self.open = True

    def end(self) -> None:
        if self.open:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self.open = False


@main.command()
@click.option("--serve/--no-serve", default=True, help="keep serving after setting up")
@click.option("--host", default=None)
@click.option("--port", default=None, type=int)
@click.option(
    "--task",
    type=click.Choice([k.value for k in TaskKind]),
    default=TaskKind.text_classification.value,
    show_default=True,
    help="sequence_tagging: English news sentences with spaCy-silver entities (ASSAY_DEMO_NER_*);"
    " survival: gbsg2 follow-up records, a few corrupted (ASSAY_SURVIVAL_DEMO_*);"
    " ranking: MSLR web-search judgments, a few wrong grades (ASSAY_RANKING_DEMO_*)",
)
def demo(serve: bool, host: str | None, port: int | None, task: str) -> None:
    """Set up a Rotten Tomatoes project (gold train, VADER-silver extension, gold dev), or with
    --task sequence_tagging a news entities project (silver sentences, the last 100 as dev),
    or with --task survival a breast cancer follow-up project (gbsg2, some records corrupted),
    or with --task ranking a web-search relevance project (MSLR, some grades wrong),
    train, score, print the URL and a login, and serve."""
    from app.cli.demo import run_demo

    _check_config()
    settings = get_settings()
    # Without --serve nothing listens when the command ends: say what to run, then where to go.
    serve_command = None if serve else serve_command_for(host, port)
    host, port = host or settings.host, port or settings.port
    worker_process = run_demo(
        url=f"http://{host}:{port}",
        echo=click.echo,
        progress=ProgressLine(),
        serve_command=serve_command,
        task=TaskKind(task),
    )
    if serve:
        _serve(host, port, with_worker=True, worker_process=worker_process)
    else:
        from app.cli.worker_process import stop_worker

        stop_worker(worker_process)


def serve_command_for(host: str | None, port: int | None) -> str:
    """The `assay serve` line that serves what `assay demo --host/--port` set up."""
    return " ".join(
        ["assay serve"]
        + ([f"--host {host}"] if host else [])
        + ([f"--port {port}"] if port else [])
    )
