"""devtenant test fixtures (implementation in tests/devtenant/fixtures.py, reusable elsewhere)."""

from tests.devtenant.fixtures import devtenant, devtenant_server

__all__ = ["devtenant", "devtenant_server"]
