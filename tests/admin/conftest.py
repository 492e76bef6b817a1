"""Admin-side tests run the real Calendar Service against devtenant (`calendar_stack`).

Fixtures here: `admin` (the stack plus the admin-side collaborators: token broker, Graph client,
helpers to call devtenant's control routes and to read the audit table).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from calendar_backend.contract import format_time
from calendar_backend.graph import GraphClient
from calendar_backend.runtime import build_clients
from calendar_backend.tokens import TokenBroker
from tests.devtenant.fixtures import devtenant, devtenant_server  # noqa: F401
from tests.service.conftest import ALEX, Stack, calendar_stack, next_week  # noqa: F401


@dataclass
class Admin:
    """The running stack seen from the admin's side."""

    stack: Stack
    tokens: TokenBroker
    graph: GraphClient

    @property
    def tenant_id(self) -> str:
        return self.stack.devtenant.tenant_id

    def oid(self, upn: str) -> str:
        found = self.stack.devtenant.tenant.find_user(upn)
        assert found is not None, upn
        return str(found["id"])

    def control(self, path: str, body: Any = None) -> Any:
        dt = self.stack.devtenant
        resp = dt.session().post(f"{dt.base_url}/_devtenant/{path}", json=body, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def app_registration(self) -> dict[str, Any]:
        return self.stack.devtenant.tenant.applications()[0]

    def audit_rows(self, operation: str | None = None) -> list[tuple[Any, ...]]:
        sql = "SELECT seq, actor_oid, operation, targets, result FROM audit_log"
        args: tuple[str, ...] = ()
        if operation:
            sql, args = sql + " WHERE operation = ?", (operation,)
        with sqlite3.connect(self.stack.db_path) as db:
            return list(db.execute(sql + " ORDER BY seq", args))

    def query(self, people: list[str]) -> dict[str, Any]:
        start, end = next_week(datetime.now(UTC))
        return {
            "interviewers": people,
            "duration_min": 30,
            "start": format_time(start),
            "end": format_time(end),
            "all": True,
            "limit": 500,
        }

    async def find(self, people: list[str], upn: str = ALEX) -> tuple[int, Any]:
        return await self.stack.post("/v1/slots/find", self.query(people), self.stack.token(upn))


@pytest.fixture
def admin(calendar_stack: Stack) -> Admin:
    tokens, graph = build_clients(calendar_stack.runtime)
    return Admin(calendar_stack, tokens, graph)
