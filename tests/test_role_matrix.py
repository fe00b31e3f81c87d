"""Every route x {admin, member reviewer, member annotator, non-member annotator, anonymous},
on SQLite and PostgreSQL.

``MINIMUM_ROLE`` is the one table of who may call what. A route that the app serves and the
table does not list fails ``test_every_route_is_in_the_table``, so a new route cannot ship
without a decision about who may call it.

Outcome classes: allowed means neither 401 nor 403 (a 404, 409 or 422 from the route's own logic
still proves the role check let the call through); forbidden means 403 from the role check (not
the CSRF check: the logged-in clients always send a valid token); anonymous means 401 on the
API and a 303 to ``/login?next=...`` on pages; hidden means the 404 "... not found" that a
missing row gets. Path parameters name real rows of one project, whose members are the reviewer
and the annotator. The non-member annotator gets hidden on every project-scoped route (a
``{project_id}``, ``{item_id}`` or ``{job_id}`` in the path), or forbidden where the role alone
already refuses them (that says nothing about the project either); elsewhere they are an
annotator like any other, and the lists they see leave the project out.
"""

from __future__ import annotations

import uuid

from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.seeding import PASSWORD, add_members, csrf_of, page_login
from tests.support import demo_rows, to_csv

PUBLIC, ANNOTATOR, REVIEWER, ADMIN = "public", "annotator", "reviewer", "admin"
NON_MEMBER = "non-member annotator"
RANK = {ANNOTATOR: 0, NON_MEMBER: 0, REVIEWER: 1, ADMIN: 2}
ROLES = (ADMIN, REVIEWER, ANNOTATOR, NON_MEMBER)
PROJECT_SCOPED = ("{project_id}", "{item_id}", "{job_id}")

# route -> the least role that may call it (roles are ordered annotator < reviewer < admin)
MINIMUM_ROLE: dict[str, str] = {
    # JSON API (bearer tokens)
    "POST /api/v1/auth/token": PUBLIC,
    "POST /api/v1/auth/password": ANNOTATOR,
    "POST /api/v1/projects": ADMIN,
    "GET /api/v1/projects": ANNOTATOR,
    "GET /api/v1/projects/{project_id}": ANNOTATOR,
    "PATCH /api/v1/projects/{project_id}": ADMIN,
    "GET /api/v1/projects/{project_id}/model-versions": ANNOTATOR,
    "GET /api/v1/projects/{project_id}/datasets": ANNOTATOR,
    "POST /api/v1/projects/{project_id}/datasets": ADMIN,
    "POST /api/v1/projects/{project_id}/jobs": ADMIN,
    "GET /api/v1/jobs/{job_id}": ANNOTATOR,
    "GET /api/v1/projects/{project_id}/items": ANNOTATOR,
    "GET /api/v1/items/{item_id}": ANNOTATOR,
    "POST /api/v1/items/{item_id}/label": ANNOTATOR,
    "POST /api/v1/projects/{project_id}/queue/next": ANNOTATOR,
    "POST /api/v1/items/{item_id}/skip": ANNOTATOR,
    "POST /api/v1/projects/{project_id}/undo": ANNOTATOR,
    "POST /api/v1/items/{item_id}/review": REVIEWER,
    "GET /api/v1/projects/{project_id}/agreement": ANNOTATOR,
    "GET /api/v1/projects/{project_id}/export": ADMIN,
    "GET /api/v1/projects/{project_id}/members": ADMIN,
    "POST /api/v1/projects/{project_id}/members": ADMIN,
    "DELETE /api/v1/projects/{project_id}/members/{user_id}": ADMIN,
    "POST /api/v1/projects/{project_id}/relabel": REVIEWER,
    "POST /api/v1/projects/{project_id}/relabel/{group_id}/undo": REVIEWER,
    "GET /api/v1/items/{item_id}/similar": ANNOTATOR,
    # pages (login sessions)
    "GET /healthz": PUBLIC,
    "GET /favicon.ico": PUBLIC,
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,
    "POST /logout": PUBLIC,
    "GET /account/password": ANNOTATOR,
    "POST /account/password": ANNOTATOR,
    "GET /": ANNOTATOR,
    "POST /projects": ADMIN,
    "GET /projects/{project_id}": ANNOTATOR,
    "POST /projects/{project_id}/datasets": ADMIN,
    "POST /projects/{project_id}/jobs": ADMIN,
    "POST /projects/{project_id}/settings": ADMIN,
    "POST /projects/{project_id}/retraining": ADMIN,
    "GET /jobs/{job_id}/progress": ANNOTATOR,
    "GET /projects/{project_id}/queue": ANNOTATOR,
    "POST /projects/{project_id}/queue/undo": ANNOTATOR,
    "POST /projects/{project_id}/queue/{item_id}": ANNOTATOR,
    "GET /items/{item_id}": ANNOTATOR,
    "POST /items/{item_id}/label": ANNOTATOR,
    "GET /projects/{project_id}/items": ANNOTATOR,
    "POST /projects/{project_id}/bulk/preview": REVIEWER,
    "POST /projects/{project_id}/bulk": REVIEWER,
    "POST /projects/{project_id}/bulk/{group_id}/undo": REVIEWER,
    "GET /projects/{project_id}/span-groups": REVIEWER,
    "POST /projects/{project_id}/span-groups/preview": REVIEWER,
    "POST /projects/{project_id}/span-groups/apply": REVIEWER,
    "GET /projects/{project_id}/review": REVIEWER,
    "POST /projects/{project_id}/review/{item_id}": REVIEWER,
    "GET /projects/{project_id}/queue-settings": ANNOTATOR,
    "POST /projects/{project_id}/overlap": ADMIN,
    "POST /projects/{project_id}/members": ADMIN,
    "POST /projects/{project_id}/members/{user_id}/remove": ADMIN,
    "GET /projects/{project_id}/export": ADMIN,
    "GET /projects/{project_id}/dashboard": ADMIN,
    "GET /projects/{project_id}/dashboard/stats": ADMIN,
    "GET /admin/users": ADMIN,
    "POST /admin/users": ADMIN,
    "POST /admin/users/{user_id}/role": ADMIN,
    "POST /admin/users/{user_id}/deactivate": ADMIN,
    "POST /admin/users/{user_id}/reactivate": ADMIN,
    "POST /admin/users/{user_id}/password": ADMIN,
    "GET /admin/tokens": ADMIN,
    "POST /admin/tokens": ADMIN,
    "POST /admin/tokens/{token_id}/revoke": ADMIN,
}
NOT_CHECKED = {  # static files served by routes, and the public API docs page
    "GET /vendor/htmx.min.js",
    "GET /vendor/swagger-ui/{name}",
    "GET /api/v1/docs",
}


def app_routes(app) -> set[str]:
    """Every method x path the app routes, less static files and the OpenAPI/docs pages."""
    found = set()
    for context in iter_route_contexts(app.routes):  # included routers, flattened with prefixes
        if not isinstance(context.original_route, APIRoute):
            continue  # /static mount, /api/v1/openapi.json and /api/v1/docs
        for method in context.methods - {"HEAD", "OPTIONS"}:
            found.add(f"{method} {context.path}")
    return found - NOT_CHECKED


def test_every_route_is_in_the_table(client):
    routes = app_routes(client.app)
    assert routes - MINIMUM_ROLE.keys() == set(), "new routes: add them to MINIMUM_ROLE"
    assert MINIMUM_ROLE.keys() - routes == set(), "the table lists routes the app no longer has"


def _key() -> str:
    return uuid.uuid4().hex


def _json_body(route: str) -> dict | None:
    """A valid body where the route validates one before its own role check."""
    return {
        "POST /api/v1/auth/token": {"username": "ada", "password": PASSWORD, "name": "matrix"},
        # a wrong current password: a 422 that changes nothing (the sessions stay valid)
        "POST /api/v1/auth/password": {"current_password": "wrong", "new_password": "x"},
        "POST /api/v1/projects": {"name": f"P{_key()[:8]}", "labels": ["a", "b"]},
        "PATCH /api/v1/projects/{project_id}": {},
        "POST /api/v1/projects/{project_id}/jobs": {},
        "POST /api/v1/items/{item_id}/label": {"label": "fresh", "idempotency_key": _key()},
        "POST /api/v1/items/{item_id}/skip": {"mode": "later", "idempotency_key": _key()},
        "POST /api/v1/projects/{project_id}/undo": {"idempotency_key": _key()},
        "POST /api/v1/items/{item_id}/review": {"idempotency_key": _key()},
        "POST /api/v1/projects/{project_id}/members": {"username": "victim"},
        "POST /api/v1/projects/{project_id}/relabel": {
            "item_ids": [1],
            "label": "fresh",
            "idempotency_key": _key(),
            "dry_run": True,
        },
    }.get(route)


def _setup(client, admin_headers) -> dict:
    """Real rows for every path parameter, and a victim user and token for the admin forms."""
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import ApiToken, Role

    project = client.post(
        "/api/v1/projects", headers=admin_headers, json={"name": "M", "labels": ["fresh", "rotten"]}
    ).json()
    uploaded = client.post(
        f"/api/v1/projects/{project['id']}/datasets",
        headers=admin_headers,
        files={"file": ("silver.csv", to_csv(demo_rows(6)), "text/csv")},
    )
    assert uploaded.status_code == 201, uploaded.text
    items = client.get(f"/api/v1/projects/{project['id']}/items?order=id", headers=admin_headers)
    job = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=admin_headers, json={})
    assert job.status_code == 202, job.text
    with session_scope() as session:
        victim = create_user(session, "victim", PASSWORD, Role.annotator)
        issue_token(session, victim, "victim's")
        victim_id = victim.id
    add_members(project["id"], "rex", "ann", "victim")
    with session_scope() as session:
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.user_id == victim_id))
    return {
        "project_id": project["id"],
        "item_id": items.json()["items"][0]["id"],
        "job_id": job.json()["id"],
        "user_id": victim_id,
        "token_id": token_id,
        "group_id": 1,  # none yet: the undo's own 422 (or page error) still shows the role passed
    }


def _logged_in(app, username: str) -> tuple[TestClient, str]:
    browser = TestClient(app)
    return browser, page_login(browser, username)


def _anonymous(app) -> tuple[TestClient, str]:
    browser = TestClient(app)
    return browser, csrf_of(browser.get("/login").text)


def _call(app, route: str, ids: dict, who: str | None, tokens: dict, sessions: dict, users: dict):
    method, template = route.split(" ", 1)
    path = template.format(**ids)
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {tokens[who]}"} if who else {}
        kwargs: dict = {"headers": headers}
        body = _json_body(route)
        if body is not None:
            kwargs["json"] = body
        if route == "POST /api/v1/projects/{project_id}/datasets":
            kwargs["files"] = {"file": ("more.csv", to_csv(demo_rows(2, offset=50)), "text/csv")}
        return TestClient(app).request(method, path, follow_redirects=False, **kwargs)
    # pages: public routes get a fresh session (logging in or out would end the shared one)
    if MINIMUM_ROLE[route] == PUBLIC:
        browser, csrf = _logged_in(app, users[who]) if who else _anonymous(app)
    else:
        browser, csrf = sessions[who]
    data = {"csrf_token": csrf}
    if route == "POST /login":
        data |= {"username": "ada", "password": PASSWORD}
    if route == "POST /projects/{project_id}/members":
        data |= {"username": "victim"}
    if method == "GET":
        return browser.get(path, follow_redirects=False)
    response = browser.request(
        method, path, data=data, headers={"X-CSRF-Token": csrf}, follow_redirects=False
    )
    if route == "POST /logout" and who:  # it ended every session of the user: log in again
        sessions[who] = _logged_in(app, users[who])
    return response


def _project_scoped(route: str) -> bool:
    return any(name in route for name in PROJECT_SCOPED)


def _expected(route: str, who: str | None) -> set[str]:
    need = MINIMUM_ROLE[route]
    if need == PUBLIC:
        return {"allowed"}
    if who is None:
        return {"anonymous"}
    by_role = "allowed" if RANK[who] >= RANK[need] else "forbidden"
    if who == NON_MEMBER and _project_scoped(route):
        return {"hidden", by_role} if by_role == "forbidden" else {"hidden"}
    return {by_role}


def _outcome(route: str, response) -> str:
    code = response.status_code
    if code == 404 and _project_scoped(route) and " not found" in response.text:
        return "hidden"
    if code == 403 and "form token" not in response.text:
        return "forbidden"
    if code == 401 and route.split(" ", 1)[1].startswith("/api/"):
        return "anonymous"
    if code == 303 and response.headers["location"].startswith("/login?next="):
        return "anonymous"
    if code in (401, 403):
        return f"refused ({code})"
    return "allowed"


def test_role_matrix(client, admin_headers):
    from app.core.auth import create_user, issue_token
    from app.core.db import session_scope
    from app.models import Role

    tokens = {ADMIN: admin_headers["Authorization"].removeprefix("Bearer ")}
    usernames = {ADMIN: "ada", REVIEWER: "rex", ANNOTATOR: "ann", NON_MEMBER: "nat"}
    with session_scope() as session:
        roles = {REVIEWER: Role.reviewer, ANNOTATOR: Role.annotator, NON_MEMBER: Role.annotator}
        for who, role in roles.items():
            user = create_user(session, usernames[who], PASSWORD, role)
            tokens[who] = issue_token(session, user, "t")
    ids = _setup(client, admin_headers)
    app = client.app
    sessions = {role: _logged_in(app, usernames[role]) for role in ROLES}
    sessions[None] = _anonymous(app)

    wrong = []
    checked = 0
    for route in sorted(MINIMUM_ROLE):
        for who in (*ROLES, None):
            response = _call(app, route, ids, who, tokens, sessions, usernames)
            expected, got = _expected(route, who), _outcome(route, response)
            checked += 1
            if got not in expected:
                wrong.append(
                    f"{route} as {who or 'anonymous'}: expected {'/'.join(expected)}, got {got} "
                    f"({response.status_code} {response.text[:120]!r})"
                )
    assert checked == 5 * len(MINIMUM_ROLE)
    assert wrong == [], "\n".join(wrong)
    _assert_lists_leave_out_the_project(app, ids["project_id"], tokens, sessions)


def _assert_lists_leave_out_the_project(app, project_id: int, tokens: dict, sessions: dict):
    """The project lists (API and the projects page) show a project to its members only."""
    link = f'href="/projects/{project_id}"'
    for who in ROLES:
        api = TestClient(app).get(
            "/api/v1/projects", headers={"Authorization": f"Bearer {tokens[who]}"}
        )
        listed = project_id in [p["id"] for p in api.json()]
        on_page = link in sessions[who][0].get("/").text
        assert listed == on_page == (who != NON_MEMBER), (who, listed, on_page)
