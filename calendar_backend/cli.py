"""The admin CLI's output contract: one JSON document on stdout per command, errors as one line.

Every ``python -m calendar_backend <command>`` (except ``serve`` while it runs, and ``--help``)
prints exactly one JSON document on stdout and nothing else; logging goes to stderr. A failure is
one line ``{"ok": false, "error": <code>, "hint": <what to do>}`` and one of these exit codes:

====  ==========================================================================================
0     done
1     the command ran and found a problem (``audit verify`` broken chain, a failed self-test,
      bookings left pending)
2     bad input: unknown command or option, an invalid value (address, date, id)
3     refused: the change is not safe or not allowed (credential exists without ``--replace``,
      unknown tenant, missing entry, permission not granted, key still in use)
4     configuration: key file, database, settings or checkpoint file unusable
5     Microsoft refused or is unreachable (wrong secret, consent declined, Graph error)
70    an unexpected internal error (no traceback is printed; set ``OPENSLOT_CLI_DEBUG=1``)
====  ==========================================================================================
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import socket
import sys
from pathlib import Path
from typing import Final, NoReturn

EXIT_OK: Final = 0
EXIT_FOUND_PROBLEM: Final = 1
EXIT_USAGE: Final = 2
EXIT_REFUSED: Final = 3
EXIT_CONFIG: Final = 4
EXIT_UPSTREAM: Final = 5
EXIT_INTERNAL: Final = 70

_ACTOR_MAX: Final = 64  # audit_log.actor_oid is String(64)


class CliError(Exception):
    """A failure the CLI reports as ``{"ok": false, "error", "hint"}`` with ``exit_code``."""

    def __init__(self, exit_code: int, error: str, hint: str) -> None:
        super().__init__(error)
        self.exit_code = exit_code
        self.error = error
        self.hint = hint

    def to_json(self) -> dict[str, object]:
        """The one line printed on stdout."""
        return {"ok": False, "error": self.error, "hint": self.hint}


class JsonArgumentParser(argparse.ArgumentParser):
    """argparse that reports usage errors as a :class:`CliError` instead of text and exit 2."""

    def error(self, message: str) -> NoReturn:
        raise CliError(
            EXIT_USAGE, f"usage: {message}", f"run `{self.prog} --help` for the commands and options"
        )


def emit(doc: object) -> None:
    """Print one JSON document on stdout (the only thing a command prints there)."""
    print(json.dumps(doc, sort_keys=True), flush=True)  # noqa: T201


def quiet_logging(level: int = logging.WARNING) -> None:
    """Logging to stderr only; library chatter (alembic, msal) below ERROR is dropped."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    root.setLevel(level)
    for noisy in ("alembic", "msal", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(level, logging.ERROR))
    logging.captureWarnings(True)  # warnings.warn(...) goes to stderr through logging
    logging.getLogger("py.warnings").setLevel(logging.ERROR)


def local_actor() -> str:
    """The audit actor of a command run on this machine: ``os:<user>@<host>`` (it says so: the
    ``os:`` prefix marks an operating-system identity, not an Entra one)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = str(os.getuid())
    host = socket.gethostname().split(".")[0] or "localhost"
    actor = "".join(c for c in f"os:{user}@{host}" if c.isprintable() and not c.isspace())
    return actor[:_ACTOR_MAX]


def read_secret(*, env_name: str | None, file: str | None, stdin: bool) -> str:
    """The client secret from a file, stdin or an environment variable (never from argv).

    Raises:
        CliError: none given, empty, or the file cannot be read.
    """
    if file:
        try:
            secret = Path(file).read_text(encoding="utf-8").strip()
        except OSError:
            raise CliError(
                EXIT_CONFIG, "cannot read the secret file", f"check that {file} exists and is readable"
            ) from None
    elif stdin:
        secret = sys.stdin.readline().strip()
    else:
        secret = os.environ.get(env_name or "", "").strip()
    if not secret:
        where = "the secret file" if file else "stdin" if stdin else env_name
        raise CliError(
            EXIT_USAGE,
            f"no client secret: {where} is empty",
            "pass it with --secret-file PATH, --secret-stdin, or the "
            "OPENSLOT_TENANT_CLIENT_SECRET environment variable",
        )
    return secret
