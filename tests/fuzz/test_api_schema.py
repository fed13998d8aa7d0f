"""schemathesis against the live OpenAPI schema of the api: every route and method, valid and
invalid data, with a key of each level, another organisation's key, an unknown key, none or junk.

Checks: no 5xx, responses conform to the published schema (status codes are not checked: the
schema lists the successes, and 401/403/404 are the one error shape's, checked below), and every
4xx is ``{"error": {"code": str, "message": str, "details": list}}``. Unsigned provider callbacks
and webhooks are fuzzed too: they must answer 4xx. Routes the schema leaves out (the docs, the
landing page) and methods no route takes are fuzzed by hand at the end.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from tests.fuzz import strategies as hostile
from tests.fuzz.conftest import FUZZ, KEY_KINDS, World, assert_answered_well, error_shape_problem

pytestmark = pytest.mark.integration

#: Examples per operation and phase: about 20 operations, 8 kinds of key.
EXAMPLES_PER_OPERATION = 15


def _config(phases: dict[str, Any]) -> Any:
    return schemathesis.Config.from_dict(
        {
            "seed": 13,
            "generation": {
                "mode": "all",  # valid and invalid data
                "max-examples": EXAMPLES_PER_OPERATION,
                "deterministic": True,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}, **phases},
        }
    )


def _live_schema(live: World, request: pytest.FixtureRequest, phases: dict[str, Any]) -> Any:
    # schemathesis's lazy loader renames the test node per operation through ``_nodeid``, which
    # pytest 9 no longer has: give it one to write to (pytest itself reads ``nodeid``).
    request.node._nodeid = request.node.nodeid
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json", config=_config(phases))


@pytest.fixture
def api_schema(live: World, request: pytest.FixtureRequest) -> Any:
    """The schema as the running api publishes it: coverage and fuzzing phases (schemathesis cannot
    combine the schema's own examples with a key drawn per case; ``example_schema`` sends those)."""
    return _live_schema(live, request, {"examples": {"enabled": False}})


@pytest.fixture
def example_schema(live: World, request: pytest.FixtureRequest) -> Any:
    """The same schema, for its own examples only."""
    return _live_schema(live, request, {"coverage": {"enabled": False}, "fuzzing": {"enabled": False}})


schema = schemathesis.pytest.from_fixture("api_schema")
#: The operations whose schema carries examples (the rest would only report "no test cases").
examples = schemathesis.pytest.from_fixture("example_schema").include(
    path_regex=r"^/(events|customers/\{customer_id\}|templates/\{kind\}/\{channel\}/\{locale\}/\{part\})$"
)


@schemathesis.check
def one_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx answer is in the one error shape (``producers/api/errors.py``)."""
    if not 400 <= response.status_code < 500 or case.method.upper() == "HEAD":
        return None
    problem = error_shape_problem(response.content)
    if problem is not None:
        raise AssertionError(f"{response.status_code} outside the one error shape: {problem}")
    return True


@schemathesis.check
def provider_routes_refuse_the_unsigned(ctx: Any, response: Any, case: Any) -> bool | None:
    """A Twilio callback or GoCardless webhook without a valid signature is a 4xx, never a 2xx."""
    if not case.path.startswith(("/callbacks/", "/webhooks/")):
        return None
    if not 400 <= response.status_code < 500:
        raise AssertionError(f"an unsigned {case.path} answered {response.status_code}")
    return True


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    one_error_shape,
    provider_routes_refuse_the_unsigned,
]


@schema.parametrize()
@schema.given(key=st.sampled_from(KEY_KINDS))
def test_every_operation_answers_without_a_5xx_in_the_published_shapes(
    case: Any, key: str, live: World
) -> None:
    # The key is ours to choose, not schemathesis's: drop whatever it generated for the header.
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.call_and_validate(base_url=live.url, headers=live.headers(key), checks=CHECKS)


@pytest.mark.stores("sqlite")
@examples.parametrize()
def test_the_schemas_own_examples_are_answered_without_a_5xx(case: Any, live: World) -> None:
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    case.call_and_validate(base_url=live.url, headers=live.headers("admin"), checks=CHECKS)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")


@pytest.mark.stores("sqlite")
def test_every_method_no_route_takes_is_a_clean_4xx(live: World) -> None:
    paths = live.client.get("/openapi.json").json()["paths"]
    assert paths, "the live schema lists no paths"
    for path, operations in paths.items():
        concrete = path.replace("{", "").replace("}", "")  # /contacts/contact_id: a syntactically fine id
        for method in _METHODS:
            if method.lower() in operations:
                continue
            for key in ("admin", "missing"):
                assert_answered_well(live.call(method, concrete, key))


@settings(FUZZ, max_examples=20)
@given(
    path=st.sampled_from(["/docs", "/redoc", "/openapi.json", "/mandates/complete", "/healthz", "/readyz"]),
    org=hostile.path_ids,
    method=st.sampled_from(["GET", "HEAD"]),
    key=st.sampled_from(KEY_KINDS),
)
def test_routes_outside_the_schema_answer_cleanly_to_hostile_queries(
    live: World, path: str, org: str, method: str, key: str
) -> None:
    answer = live.call(method, f"{path}?org={quote(org, safe='')}", key)
    assert_answered_well(answer)
