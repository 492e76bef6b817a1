"""The Graph client sends its bearer token to Graph's own base URL only.

Paged answers carry absolute ``@odata.nextLink``s that several readers follow (the allow-list's and
a pool's group members, the directory sync, calendarView). A link to another host, or one that only
looks like the base (a parser differential), must never receive the token: the client refuses it
before any request, whoever the caller is."""

from __future__ import annotations

from typing import Any

import pytest

from calendar_backend.errors import CalendarError
from calendar_backend.graph import GraphClient

BASE = "https://graph.example.test/v1.0"


class RecordingSession:
    """Stands in for aiohttp's session: records every request, answers nothing."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def request(self, method: str, url: str, **_kw: Any) -> Any:
        self.urls.append(url)
        raise AssertionError(f"a request was sent to {url}")


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/v1.0/groups/x/transitiveMembers?$skiptoken=1",
        "https://graph.example.test.evil.example/v1.0/groups",
        "https://graph.example.test/v1.0@evil.example/groups",
        "https://graph.example.test:444/v1.0/groups",
        "http://graph.example.test/v1.0/groups",
        "https://graph.example.test/v1.0",  # the base itself, not a path under it
        "https://graph.example.test/v1.0evil/groups",
        "HTTPS://evil.example/v1.0/groups",
    ],
)
async def test_a_next_link_to_another_host_never_gets_the_token(link: str) -> None:
    session = RecordingSession()
    client = GraphClient(session, BASE)  # type: ignore[arg-type]
    with pytest.raises(CalendarError):
        await client.request("GET", link, "secret-token")
    assert session.urls == []
