"""The OpenAPI document as client generators read it: short unique operation ids, the upload's
file as binary, the export's body typed, enums and date-times where the server has a fixed set
or a time, named score fields, typed error bodies, declared limits.

tests/test_api_clients.py generates a client from the document and runs a workflow through it;
tests/test_api_fuzz.py checks that the answers match the document.
"""

from __future__ import annotations

import re

import pytest

from tests.support import assay_env

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from app.main import create_app

    with assay_env(tmp_path_factory.mktemp("openapi")):
        yield create_app(run_migrations=False)


@pytest.fixture(scope="module")
def document(app) -> dict:
    return app.openapi()


def _operations(document: dict) -> dict[str, dict]:
    return {
        f"{method.upper()} {path}": operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    }


def _schema(document: dict, name: str) -> dict:
    return document["components"]["schemas"][name]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def test_operation_ids_are_short_unique_snake_case_route_names(app, document):
    from fastapi.routing import APIRoute, iter_route_contexts

    operations = _operations(document)
    ids = [operation["operationId"] for operation in operations.values()]
    assert len(ids) == len(set(ids)), sorted(ids)
    assert all(SNAKE_CASE.match(i) for i in ids), ids
    assert not [i for i in ids if "api_v1" in i or len(i) > 30], ids
    names = {  # included routers flattened with their prefixes, as tests/test_role_matrix.py
        f"{method} {context.path}": context.name
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        for method in context.methods
    }
    assert {key: names[key] for key in operations} == {
        key: operation["operationId"] for key, operation in operations.items()
    }
    assert operations["POST /api/v1/projects/{project_id}/datasets"]["operationId"] == (
        "upload_dataset"
    )
    assert operations["GET /api/v1/projects/{project_id}/items"]["operationId"] == "list_items"
    assert operations["GET /api/v1/projects/{project_id}/export"]["operationId"] == (
        "export_project"
    )
    assert operations["POST /api/v1/auth/token"]["operationId"] == "create_token"


def test_the_upload_form_sends_its_file_as_binary(document):
    body = _operations(document)["POST /api/v1/projects/{project_id}/datasets"]["requestBody"]
    assert body["content"]["multipart/form-data"]["schema"] == _ref("DatasetUpload")
    form = _schema(document, "DatasetUpload")
    assert form["properties"]["file"]["type"] == "string"
    assert form["properties"]["file"]["format"] == "binary"
    assert form["required"] == ["file"]
    assert form["properties"]["kind"]["$ref"] == _ref("DatasetKind")["$ref"]
    assert _schema(document, "ImportMode")["enum"] == ["refuse", "replace", "skip"]


def test_the_export_documents_its_file_as_text(document):
    ok = _operations(document)["GET /api/v1/projects/{project_id}/export"]["responses"]["200"]
    assert ok["content"] == {
        "text/csv; charset=utf-8": {"schema": {"type": "string"}},
        "application/x-ndjson": {"schema": {"type": "string"}},
        "text/plain; charset=utf-8": {"schema": {"type": "string"}},  # CoNLL
    }


@pytest.mark.parametrize(
    ("model", "field", "enum"),
    [
        ("JobOut", "state", "JobState"),
        ("JobOut", "kind", "JobKind"),
        ("DatasetOut", "kind", "DatasetKind"),
        ("ItemOut", "dataset_kind", "DatasetKind"),
        ("ItemOut", "status", "ItemStatus"),
        ("EvidenceOut", "role", "EvidenceRole"),
        ("ModelVersionOut", "estimator", "Estimator"),
        ("MemberOut", "role", "Role"),
        ("ProjectCreate", "estimator", "Estimator"),
    ],
)
def test_fixed_sets_are_enums(document, model, field, enum):
    prop = _schema(document, model)["properties"][field]
    refs = [prop, *prop.get("anyOf", [])]
    assert _ref(enum) in [{"$ref": r["$ref"]} for r in refs if "$ref" in r], prop
    assert _schema(document, enum)["enum"]


def test_enums_hold_what_the_server_stores():
    from app.kinds.estimators import ESTIMATORS, Estimator
    from app.models import JobKind
    from app.schemas import EvidenceRole
    from app.services.job_lease import leased_tasks

    assert {k.value for k in JobKind} == set(leased_tasks())
    assert [e.value for e in Estimator] == list(ESTIMATORS)
    assert {r.value for r in EvidenceRole} == {"supporter", "opposer", "proponent"}


def test_times_are_date_times_and_scores_are_named(document):
    leased = _schema(document, "QueueItemOut")["properties"]["leased_until"]
    assert leased["type"] == "string" and leased["format"] == "date-time"
    assert (
        _schema(document, "ItemOut")["properties"]["scores"]["$ref"] == _ref("ItemScores")["$ref"]
    )
    assert {"suspicion", "loss", "self_influence", "dev_influence"} <= set(
        _schema(document, "ItemScores")["properties"]
    )


def test_error_bodies_are_typed(document):
    assert _schema(document, "ErrorOut")["properties"]["detail"]["type"] == "string"
    detail = _schema(document, "JobConflictOut")["properties"]["detail"]
    assert detail == _ref("RunningJob")
    assert set(_schema(document, "RunningJob")["required"]) == {"message", "job_id"}
    conflicts = {
        key: operation["responses"]["409"]["content"]["application/json"]["schema"]
        for key, operation in _operations(document).items()
        if "409" in operation["responses"]
    }
    assert conflicts["POST /api/v1/projects/{project_id}/jobs"] == _ref("JobConflictOut")
    assert conflicts["POST /api/v1/items/{item_id}/label"] == _ref("ErrorOut")
    assert set(map(str, conflicts.values())) == {str(_ref("JobConflictOut")), str(_ref("ErrorOut"))}


def test_the_page_limit_is_declared_and_enforced(client, admin_headers, project):
    from app.core.config import get_settings

    document = client.get("/api/v1/openapi.json").json()
    parameters = document["paths"]["/api/v1/projects/{project_id}/items"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")["schema"]
    most = get_settings().page_limit_max
    assert (limit["minimum"], limit["maximum"]) == (1, most)
    url = f"/api/v1/projects/{project['id']}/items?limit="
    assert client.get(f"{url}{most}", headers=admin_headers).status_code == 200
    over = client.get(f"{url}{most + 1}", headers=admin_headers)
    assert over.status_code == 422 and over.json()["detail"][0]["loc"] == ["query", "limit"]
