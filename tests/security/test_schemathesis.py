"""Schemathesis against the Calendar Service's own OpenAPI document (security.md §7 #29).

The real service (all three locks, SQLite, keyring) runs against devtenant on a random loopback port; every
operation gets 25 derandomized examples with a valid bearer token. Checks: no 5xx, and no 2xx that the
document does not list for the operation. devtenant is reset afterwards (the fuzzer creates events).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from calendar_backend.app import build_openapi
from tests.devtenant.fixtures import DevTenantHandle
from tests.security.servers import calendar_service, serve_cm_in_thread


@pytest.fixture(scope="module")
def calendar_url(
    devtenant_server: DevTenantHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("schemathesis")
    try:
        with serve_cm_in_thread(lambda: calendar_service(devtenant_server, tmp)) as url:
            yield url
    finally:
        devtenant_server.reset()


@pytest.fixture(scope="module")
def bearer(devtenant_server: DevTenantHandle) -> str:
    return devtenant_server.mint_user_token("alexw@contoso.example")


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False
        yield session


# The document the service serves at /v1/openapi.json (test_served_document_is_the_fuzzed_one pins that
# they are equal; schemathesis' lazy `from_fixture` loader does not run under pytest 9).
schema = schemathesis.openapi.from_dict(build_openapi())


def test_served_document_is_the_fuzzed_one(calendar_url: str, http: requests.Session) -> None:
    served = http.get(f"{calendar_url}/v1/openapi.json", timeout=10).json()
    assert served == build_openapi()


@schema.parametrize()
@settings(max_examples=25, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
def test_calendar_service_never_5xx(
    case: Any, calendar_url: str, bearer: str, http: requests.Session
) -> None:
    response = case.call_and_validate(
        base_url=calendar_url,
        session=http,
        headers={"Authorization": f"Bearer {bearer}"},
        checks=[not_a_server_error],
    )
    documented = case.operation.definition.raw.get("responses", {})
    if 200 <= response.status_code < 300:
        assert str(response.status_code) in documented, (case.operation.label, response.status_code)
