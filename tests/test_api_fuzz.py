"""Fuzz the JSON API against its own OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every operation gets generated requests (valid and invalid), sent as an admin so they reach the
handlers; each response must not be a 5xx and must match the documented status codes, content
types and schemas. Path ids are drawn partly from seeded rows so the handlers get past 404.
Runs are derandomized (the same examples every run) and bounded by ``MAX_EXAMPLES``.

Schemathesis draws strings as UTF-8, which has no lone surrogates, and keeps bodies shallow; so
a share of the cases is rewritten before it is sent (``_Hostile``): a string of the JSON body
(or a key) gets a lone UTF-16 surrogate, written as the ``\\ud800`` escape the way a client's
JSON encoder sends it; the body, or one value in it, becomes JSON nested 100 to 10,000 deep;
a query or path value gets a surrogate's bytes percent-encoded (``%ED%A0%80``: a URL cannot
carry the character itself). Each of these must be a 4xx as documented, never a 5xx.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
from schemathesis.core import NotSet

from app.core.db import MAX_ROW_ID
from tests.seeding import seed_model_version
from tests.support import demo_rows, to_csv
from tests.test_api import upload

MAX_EXAMPLES = 25
SEEDED_ITEMS = 6
SURROGATES = ("\ud800", "\udfff", "\udbff")  # high, low, the last high one
PLACEHOLDER = "\x00assay-deep\x00"  # stands for the nested text until the body is written
BODY_KINDS = ("surrogate", "deep-field", "deep-body")
KINDS = (*BODY_KINDS, "query", "path")
# cases rewritten per kind, at least, over one run of every operation in both modes (a run
# sends about twice these; few operations have a query)
MINIMUM_SENT = {"surrogate": 20, "deep-field": 10, "deep-body": 10, "query": 4, "path": 20}


def _nested(depth: int, kind: str) -> str:
    """JSON nested ``depth`` deep, written as text: json.dumps would recurse that deep."""
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _nodes(value: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every value inside ``value`` (itself included), iteratively."""
    found, stack = [], [(value, path)]
    while stack:
        node, where = stack.pop()
        found.append(where)
        if isinstance(node, dict):
            stack.extend((child, (*where, key)) for key, child in node.items())
        elif isinstance(node, list):
            stack.extend((child, (*where, i)) for i, child in enumerate(node))
    return found


def _get(value: Any, path: tuple) -> Any:
    for step in path:
        value = value[step]
    return value


def _replaced(value: Any, path: tuple, new: Any) -> Any:
    """A copy of ``value`` with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


def _with_surrogate(text: str, rng: random.Random) -> str:
    at = rng.randint(0, len(text))
    return text[:at] + rng.choice(SURROGATES) + text[at:]


class _Hostile:
    """Rewrites one generated case into a request a careless or hostile client sends; the
    keyword arguments for ``case.call`` (a raw body, a query or a URL), or None when the
    kind does not apply to this operation. ``sent`` counts what went out, per kind."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.answered: Counter[tuple[str, int]] = Counter()  # (kind, status)

    def __call__(self, case, kind: str, rng: random.Random) -> dict[str, Any] | None:
        if kind in ("query", "path"):
            return self._url(case, kind, rng)
        if not _sends_json(case):
            return None
        body = case.body
        if kind == "surrogate":
            body = self._surrogate_body(body, rng)
        elif kind == "deep-field" and isinstance(body, dict | list) and body:
            body = _replaced(body, rng.choice(_nodes(body)[1:]), PLACEHOLDER)
        elif kind in ("deep-field", "deep-body"):
            body = PLACEHOLDER
        text = json.dumps(body)  # ensure_ascii: a surrogate goes out as its \\uXXXX escape
        if json.dumps(PLACEHOLDER) in text:
            nested = _nested(rng.randint(100, 10_000), rng.choice(("array", "object")))
            text = text.replace(json.dumps(PLACEHOLDER), nested)
        else:
            assert "\\ud" in text.lower(), text[:200]  # the escape itself, not UTF-8 bytes
        self.sent[kind] += 1
        return {"data": text.encode("ascii")}

    @staticmethod
    def _surrogate_body(body: Any, rng: random.Random) -> Any:
        """One string (a value or a key) gains a lone surrogate; a body without strings gets
        a key that is one."""
        if isinstance(body, str):
            return _with_surrogate(body, rng)
        strings = [
            (path, kind)
            for path in _nodes(body)
            for kind in ("value", "key")
            if (kind == "value" and isinstance(_get(body, path), str))
            or (kind == "key" and path and isinstance(path[-1], str))
        ]
        if not strings:
            extra = {rng.choice(SURROGATES): 1}
            return {**body, **extra} if isinstance(body, dict) else extra
        path, kind = rng.choice(strings)
        if kind == "value":
            return _replaced(body, path, _with_surrogate(_get(body, path), rng))
        parent = _get(body, path[:-1])
        renamed = {
            (_with_surrogate(key, rng) if key == path[-1] else key): child
            for key, child in parent.items()
        }
        return _replaced(body, path[:-1], renamed)

    def _url(self, case, kind: str, rng: random.Random) -> dict[str, Any] | None:
        """A surrogate's UTF-8-style bytes (invalid UTF-8) in a query value or a path segment."""
        bad = quote(rng.choice(SURROGATES), errors="surrogatepass")
        if kind == "query":
            names = [p.name for p in case.operation.query]
            if not names:
                return None
            name = rng.choice(names)
            value = case.query.get(name) if isinstance(case.query, dict) else None
            text = quote(value if isinstance(value, str) else str(value or ""))
            self.sent[kind] += 1
            return {"params": f"{quote(name)}={text}{bad}"}  # last: the value the app reads
        template = case.path.strip("/").split("/")
        slots = [i for i, segment in enumerate(template) if segment.startswith("{")]
        if not slots:
            return None
        url = case.as_transport_kwargs(base_url="http://testserver")["url"]
        parts = urlsplit(url)
        segments = parts.path.split("/")
        offset = len(segments) - len(template)  # a base path before the template
        at = offset + rng.choice(slots)
        segments[at] += bad
        self.sent[kind] += 1
        return {"url": urlunsplit(parts._replace(path="/".join(segments)))}


def _sends_json(case) -> bool:
    media = (case.media_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" and not isinstance(case.body, NotSet)


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


def _fuzz(operation, mode: GenerationMode, hostile: _Hostile) -> None:
    """``MAX_EXAMPLES`` derandomized cases of one operation, each sent and validated; about
    half of them rewritten by ``hostile``."""

    # only the rewrites the operation can take (a query rewrite needs a query parameter), so
    # each kind's share of the cases does not shrink as operations without one are added
    kinds = [
        kind
        for kind in KINDS
        if (kind != "query" or list(operation.query))
        and (kind != "path" or list(operation.path_parameters))
    ]

    @given(
        case=operation.as_strategy(generation_mode=mode),
        kind=st.sampled_from((None, None, None, *kinds)),
        rng=st.randoms(use_true_random=False),
    )
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case, kind: str | None, rng: random.Random) -> None:
        rewrite = hostile(case, kind, rng) if kind else None
        # Every other check applies; this one expects any schema-valid request to succeed, but
        # the handlers rightly refuse some (a label outside the project's set, a forged cursor,
        # skipping an item one does not hold), rules a JSON schema cannot state.
        response = case.call_and_validate(
            excluded_checks=[positive_data_acceptance], **(rewrite or {})
        )
        if rewrite:
            hostile.answered[(kind, response.status_code)] += 1

    run()


def test_api_matches_its_openapi_document(api_schema):
    failures, hostile = [], _Hostile()
    for result in api_schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:
            try:
                _fuzz(operation, mode, hostile)
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label
                # nothing to break: no parameters or body (the auth header is fixed)
            except (Exception, BaseExceptionGroup) as err:  # report every operation, not one
                failures.append(f"{operation.label} ({mode.value}): {err}")
    assert not failures, "\n\n".join(failures)
    assert all(hostile.sent[kind] >= least for kind, least in MINIMUM_SENT.items()), hostile.sent
    # the strict parser refused every rewritten body (FastAPI alone would have stored or crashed)
    body_answers = {status for (kind, status) in hostile.answered if kind in BODY_KINDS}
    assert body_answers == {422}, hostile.answered


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
    from app.core.db import session_scope
    from app.models import LabelEvent, Project

    uploaded = upload(client, admin_headers, project["id"], to_csv(demo_rows(1)))
    assert uploaded.status_code == 201, uploaded.text
    response = client.request(method, url, headers=admin_headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]
    with session_scope() as session:
        assert session.query(Project).count() == 1
        assert session.query(LabelEvent).filter(LabelEvent.source != "import").count() == 0


def test_the_queue_documents_its_busy_503_with_retry_after(client):
    """The fuzzer cannot make the queue lose every race (tests/test_bad_input.py does), so the
    document is checked here: clients learn of the 503 and its Retry-After from it."""
    document = client.get("/api/v1/openapi.json").json()
    busy = document["paths"]["/api/v1/projects/{project_id}/queue/next"]["post"]["responses"]
    assert "Retry-After" in busy["503"]["headers"], busy.get("503")
