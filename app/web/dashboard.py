"""The admin dashboard: datasets, live jobs, and plots drawn on the server as inline SVG."""

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from app.api.deps import RowId, page_project, visible_or_404
from app.core.auth import page_admin, polled_page_admin
from app.core.config import get_settings
from app.core.db import get_db
from app.models import ACTIVE_JOB_STATES, Project, User
from app.services import dashboard as stats
from app.services import projects as project_service
from app.services.charts import bar_chart, line_chart, thin
from app.services.membership import project_for
from app.web.templating import fragment_of, render

router = APIRouter()
JOBS = 10


def _detection_chart(found: stats.Detection):
    """This queue's order against a random order and a perfect one."""
    n = found.reviewed
    series = [("found in review order", thin(found.points), False)]
    if found.base_rate is not None and n:
        best = min(n, found.wrong)
        series += [
            ("random order (expected)", [(0, 0), (n, n * found.base_rate)], True),
            ("every one a wrong label", [(0, 0), (best, best), (n, best)], True),
        ]
    return line_chart(
        "Wrong labels found vs items reviewed",
        series,
        x_label="items reviewed (with a reference label)",
        y_label="wrong silver labels found",
    )


def _f1_chart(versions: list[stats.VersionF1]):
    names = [name for _, name in stats.F1_METRICS]
    series = [
        (f"{name} macro-F1", [(v.version, v.f1[name]) for v in versions if name in v.f1], False)
        for name in names
    ]
    return line_chart(
        "Macro-F1 by model version",
        [s for s in series if s[1]],
        x_label="model version",
        y_label="macro-F1",
        x_min=versions[0].version if versions else 1,
        y_max=1.0,
    )


def _stats_context(db: Session, project: Project) -> dict:
    detection = stats.detection(db, project)
    versions = stats.f1_by_version(db, project)
    labels = stats.label_distribution(db, project)
    return {
        "project": project,
        "detection": detection,
        "detection_chart": _detection_chart(detection),
        "versions": versions,
        "f1_chart": _f1_chart(versions),
        "labels": labels,
        "labels_chart": bar_chart(
            "Labels before and after review",
            [c.label for c in labels],
            [("silver", [c.silver for c in labels]), ("now", [c.final for c in labels])],
            y_label="items",
        ),
        "annotators": stats.annotators(db, project, get_settings().dashboard_idle_gap_s),
        "refresh_s": get_settings().dashboard_refresh_s,
        "idle_gap_s": get_settings().dashboard_idle_gap_s,
    }


@router.get("/projects/{project_id}/dashboard")
def dashboard_page(
    request: Request,
    project: Project = Depends(page_project),  # before the role check: a non-member gets 404
    user: User = Depends(page_admin),
    db: Session = Depends(get_db),
):
    datasets = project_service.list_datasets(db, project)
    return render(
        request,
        "dashboard.html",
        user=user,
        datasets=datasets,
        total_rows=sum(d.row_count for d in datasets),
        jobs=project_service.recent_jobs(db, project, JOBS),
        active_states=[s.value for s in ACTIVE_JOB_STATES],
        **_stats_context(db, project),
    )


@router.get("/projects/{project_id}/dashboard/stats")
def dashboard_stats(
    request: Request,
    project_id: RowId,
    user: User = Depends(polled_page_admin),
    db: Session = Depends(get_db),
):
    """The plots and tables alone: the page re-fetches them while annotators work. Polling is
    not activity (``polled_page_admin``): an open dashboard tab still idles out."""
    project = visible_or_404(project_for, db, project_id, user)
    fragment_of(request, f"/projects/{project.id}/dashboard")
    return render(request, "_dashboard_stats.html", **_stats_context(db, project))
