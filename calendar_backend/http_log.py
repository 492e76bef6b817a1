"""Keep request bytes out of the logs when aiohttp's HTTP parser refuses a request. PURE: stdlib only
(the bot reaches it through `calendar_backend.contract`).

aiohttp logs a parser error (a header line over 8190 bytes, a bad character in a header, ...) on the
``aiohttp.server`` logger with the exception, whose message quotes the first ~100 bytes of the
offending line: an oversized ``Authorization: Bearer ...`` header put the start of the token in the
log. `install_http_log_redaction` adds a filter to that logger which rewrites such a record to one
line naming the error class only (no traceback, no bytes). Other records are untouched.
"""

from __future__ import annotations

import logging

SERVER_LOGGER = "aiohttp.server"
_PARSER_ERRORS_MODULE = "aiohttp.http_exceptions"


def _is_parser_error(exc: BaseException | None) -> bool:
    return exc is not None and any(cls.__module__ == _PARSER_ERRORS_MODULE for cls in type(exc).__mro__)


class ParserErrorRedaction(logging.Filter):
    """Rewrites aiohttp parser-error records to ``bad HTTP request: <ErrorClass>``."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if _is_parser_error(exc):
            record.msg, record.args = "bad HTTP request refused: %s", (type(exc).__name__,)
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install_http_log_redaction() -> None:
    """Add `ParserErrorRedaction` to the ``aiohttp.server`` logger (once per process)."""
    logger = logging.getLogger(SERVER_LOGGER)
    if not any(isinstance(f, ParserErrorRedaction) for f in logger.filters):
        logger.addFilter(ParserErrorRedaction())
