"""Fuzz the JSON API against its own OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every operation gets generated requests (valid and invalid), sent as an admin so they reach the
handlers; each response must not be a 5xx and must match the documented status codes, content
types and schemas. Path ids are drawn partly from seeded rows so the handlers get past 404.
Runs are derandomized (the same examples every run) and bounded by ``MAX_EXAMPLES``.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from app.db import MAX_ROW_ID
from tests.seeding import seed_model_version
from tests.support import demo_rows, to_csv
from tests.test_api import upload

MAX_EXAMPLES = 25
SEEDED_ITEMS = 6


@pytest.fixture
def api_schema(client, admin_headers, annotator_headers, project):
    """The app's OpenAPI document, with a project, items, a model version and a job behind it."""
    uploaded = upload(client, admin_headers, project["id"], to_csv(demo_rows(SEEDED_ITEMS)))
    assert uploaded.status_code == 201, uploaded.text
    item_ids = [
        item["id"]
        for item in client.get(
            f"/api/v1/projects/{project['id']}/items?order=id", headers=admin_headers
        ).json()["items"]
    ]
    seed_model_version(project["id"], item_ids, project["labels"])
    job = client.post(f"/api/v1/projects/{project['id']}/jobs", headers=admin_headers, json={})
    assert job.status_code == 202, job.text
    known = {"project_id": [project["id"]], "item_id": item_ids, "job_id": [job.json()["id"]]}

    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", client.app)

    @schema.hook
    def flatmap_path_parameters(context, path_parameters):
        """Keep the generated id or swap in a seeded one, so both 404s and handlers run."""
        if not path_parameters:
            return st.just(path_parameters)
        return st.fixed_dictionaries(
            {
                name: st.sampled_from([value, *known.get(name, [])])
                if type(value) is int and 1 <= value <= MAX_ROW_ID  # a broken id stays broken
                else st.just(value)
                for name, value in path_parameters.items()
            }
        )

    # fixed headers: sent on every case and never mutated, so negative cases stay negative
    schema.config.update(headers=admin_headers)
    return schema


def _fuzz(operation, mode: GenerationMode) -> None:
    """``MAX_EXAMPLES`` derandomized cases of one operation, each sent and validated."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        # Every other check applies; this one expects any schema-valid request to succeed, but
        # the handlers rightly refuse some (a label outside the project's set, a forged cursor,
        # skipping an item one does not hold), rules a JSON schema cannot state.
        case.call_and_validate(excluded_checks=[positive_data_acceptance])

    run()


def test_api_matches_its_openapi_document(api_schema):
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            try:
                _fuzz(operation, mode)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label
                # nothing to break: no parameters or body (the auth header is fixed)
            except (Exception, BaseExceptionGroup) as err:  # report every operation, not one
                failures.append(f"{operation.label} ({mode.value}): {err}")
    assert not failures, "\n\n".join(failures)


# Regression tests for what the fuzzer found: each was a 500 before the fix.


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/projects/{big}",
        "/api/v1/items/{big}",
        "/api/v1/jobs/{big}",
        "/api/v1/projects/0",
        "/api/v1/projects/1/items?order=id&cursor={big}",
    ],
)
def test_an_id_past_the_integer_columns_is_a_422(client, admin_headers, project, url):
    big = 2**70  # past SQLite's int64 too
    response = client.get(url.format(big=big), headers=admin_headers)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("post", "/api/v1/projects", {"name": "a\x00b", "labels": ["x", "y"]}, "name"),
        ("post", "/api/v1/projects", {"name": "p", "labels": ["x", "y" * 201]}, "labels"),
        (
            "post",
            "/api/v1/items/1/skip",
            {"mode": "later", "idempotency_key": "k" * 8 + "\x00"},
            "idempotency_key",
        ),
        (
            "post",
            "/api/v1/items/1/label",
            {"label": "fresh\x00", "idempotency_key": "k" * 9},
            "label",
        ),
        ("post", "/api/v1/auth/token", {"username": "ada\x00", "password": "x"}, "username"),
        (
            "post",
            "/api/v1/auth/token",
            {"username": "ada", "password": "x", "name": "n" * 121},
            "name",
        ),
    ],
    ids=["nul-name", "long-label", "nul-key", "nul-label", "nul-username", "long-token-name"],
)
def test_text_the_database_cannot_store_is_a_422_naming_the_field(
    client, admin_headers, project, method, url, body, field
):
    """NUL characters (PostgreSQL refuses them) and strings longer than their columns."""
    from app.db import session_scope
    from app.models import LabelEvent, Project

    uploaded = upload(client, admin_headers, project["id"], to_csv(demo_rows(1)))
    assert uploaded.status_code == 201, uploaded.text
    response = client.request(method, url, headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]
    with session_scope() as session:
        assert session.query(Project).count() == 1
        assert session.query(LabelEvent).filter(LabelEvent.source != "import").count() == 0
