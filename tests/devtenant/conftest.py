"""devtenant test fixtures (implementation in tests/devtenant/fixtures.py, reusable elsewhere), and the
Graph route tests' two: `tenant` (the test module's own `tenant_doc()`, loaded fresh for each test) and
`client` (a test client serving only that tenant's Graph routes, tests/devtenant/graph_harness.py)."""

import pytest

from devtenant.tenant import DevTenant, tenant_from_dict
from tests.devtenant.fixtures import devtenant, devtenant_server
from tests.devtenant.graph_harness import AiohttpClient, Client, graph_client

__all__ = ["client", "devtenant", "devtenant_server", "tenant"]


@pytest.fixture
def tenant(request: pytest.FixtureRequest) -> DevTenant:
    """The requesting test module's ``tenant_doc()`` as a live tenant."""
    return tenant_from_dict(request.module.tenant_doc())


@pytest.fixture
async def client(tenant: DevTenant, aiohttp_client: AiohttpClient) -> Client:
    return await graph_client(tenant, aiohttp_client)
