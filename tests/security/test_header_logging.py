"""Issue 12 finding 14: no part of an Authorization header reaches a log when aiohttp's parser refuses
the request (it quoted the first ~100 bytes of an oversized header line), on the bot and on the
Calendar Service, real servers, raw sockets, every logger at DEBUG."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp.test_utils import TestServer

import bot as bot_module
from dialogs.sql_storage import SqlStorage
from tests.bot.conftest import FakeCalendarService
from tests.service.conftest import Stack, calendar_stack

__all__ = ["calendar_stack"]

CANARY = "eyJhbGciOiJSUzI1NiJ9.SECRETSTART"
REQUESTS = {
    "oversized_authorization": f"Authorization: Bearer {CANARY}{'A' * 9000}",
    "control_char_in_authorization": f"Authorization: Bearer {CANARY}\x01tail",
    "oversized_request_line": None,
}


async def send_raw(host: str, port: int, case: str) -> bytes:
    header = REQUESTS[case]
    if header is None:
        head = f"GET /v1/health?access_token={CANARY}{'B' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n"
    else:
        head = f"POST /api/messages HTTP/1.1\r\nHost: x\r\n{header}\r\nContent-Length: 0\r\n\r\n"
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(head.encode("latin-1"))
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    return answer


def assert_no_token_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text + "".join(str(r.exc_info) + str(r.args) for r in caplog.records)
    assert "SECRETSTART" not in text
    assert "eyJhbGci" not in text
    assert any("bad HTTP request refused" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("case", list(REQUESTS))
async def test_bot_parser_errors_log_no_header_bytes(
    case: str, bot_storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = bot_module.load_bot_settings({"OPENSLOT_ENV": "dev", "OPENSLOT_DEV_TENANT_ID": "t1"})
    server = TestServer(
        bot_module.build_app(settings, calendar=FakeCalendarService(), storage=bot_storage), host="127.0.0.1"
    )
    await server.start_server()
    try:
        answer = await send_raw("127.0.0.1", server.port or 0, case)
    finally:
        await server.close()
    assert b" 400 " in answer.split(b"\r\n")[0]
    assert_no_token_logged(caplog)


@pytest.mark.parametrize("case", list(REQUESTS))
async def test_calendar_service_parser_errors_log_no_header_bytes(
    case: str, calendar_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = calendar_stack.client.server
    answer = await send_raw(str(server.host), server.port or 0, case)
    assert b" 400 " in answer.split(b"\r\n")[0]
    assert_no_token_logged(caplog)
    assert "SECRETSTART" not in calendar_stack.log.getvalue()
