"""Builds the Teams app package: manifest.json (from the template) + color.png + outline.png.

Usage::

    python appManifest/build.py --bot-app-id GUID --public-hostname bot.contoso.com \
        [--version 1.2.0] [--teams-app-id GUID] [--privacy-url URL] [--terms-url URL] \
        [--out build/openslot-teams-app.zip]

Missing flags fall back to ``OPENSLOT_BOT_APP_ID``, ``OPENSLOT_PUBLIC_BASE_URL`` (its host name),
``OPENSLOT_APP_VERSION`` (else ``[project] version`` in pyproject.toml), ``OPENSLOT_TEAMS_APP_ID``,
``OPENSLOT_PRIVACY_URL`` and ``OPENSLOT_TERMS_URL`` (else the bot's own ``/privacy`` and
``/terms`` pages). Without a Teams app id, a stable one is derived from the bot id (uuid5), so
rebuilding never changes the app's identity; the Teams admin center only accepts an update whose
``version`` is higher than the uploaded one, so raise the version for each upload.

The build refuses to write a package while any ``${{PLACEHOLDER}}`` is left unfilled, when an id
is not a GUID, the version is not ``MAJOR.MINOR.PATCH``, the host is not a public DNS name (an IP
address, ``localhost`` or a single label are refused), or a URL is not ``https``. Standard
library only (``make package`` installs nothing). The zip is deterministic.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import sys
import tomllib
import uuid
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

HERE: Final = Path(__file__).resolve().parent
DEFAULT_OUT: Final = HERE.parent / "build" / "openslot-teams-app.zip"
PLACEHOLDER: Final = re.compile(r"\$\{\{([A-Z0-9_]+)\}\}")
GUID: Final = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
HOSTNAME: Final = re.compile(
    r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
    r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
)
VERSION: Final = re.compile(r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})")
APP_NAMESPACE: Final = uuid.UUID("6f1d7c52-93a4-4e55-9b7e-0b9a7c1f2e10")
ZIP_DATE: Final = (2024, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """The package cannot be built from the given inputs (message says why, no secrets)."""


def fill_template(template: str, values: Mapping[str, str]) -> str:
    """Return ``template`` with every ``${{NAME}}`` replaced from ``values``.

    Raises:
        BuildError: if a placeholder has no value (all missing names are listed).
    """
    missing = sorted({name for name in PLACEHOLDER.findall(template) if not values.get(name)})
    if missing:
        raise BuildError(f"unfilled placeholders: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def _guid(name: str, value: str) -> str:
    if GUID.fullmatch(value) is None:
        raise BuildError(f"{name} must be a GUID")
    return value.lower()


def _hostname(value: str) -> str:
    if "://" in value:
        parts = urlsplit(value)
        if parts.scheme != "https":
            raise BuildError("the public base URL must be https (Teams only opens https pages)")
        host = (parts.hostname or "").rstrip(".")
    else:
        host = value.lower().rstrip(".")
    if HOSTNAME.fullmatch(host) is None:
        raise BuildError("public hostname must be a bare DNS name such as bot.contoso.com")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        raise BuildError("public hostname must be a DNS name, not an IP address")
    if "." not in host or host == "localhost" or host.endswith(".localhost"):
        raise BuildError("public hostname must be a public DNS name such as bot.contoso.com")
    return host


def _https_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        raise BuildError(f"{name} must be an https URL")
    _hostname(parts.hostname)
    return value


def project_version(pyproject: Path = HERE.parent / "pyproject.toml") -> str:
    """``[project] version`` from pyproject.toml (the default package version)."""
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BuildError("cannot read the project version from pyproject.toml") from exc
    return str(doc.get("project", {}).get("version", ""))


def _version(value: str) -> str:
    if VERSION.fullmatch(value) is None:
        raise BuildError("version must be MAJOR.MINOR.PATCH, e.g. 1.2.0")
    return value


def resolve_values(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the placeholder values from flags, else the environment.

    Raises:
        BuildError: if the bot app id or public host is missing or malformed.
    """
    bot = args.bot_app_id or environ.get("OPENSLOT_BOT_APP_ID", "")
    host = args.public_hostname or environ.get("OPENSLOT_PUBLIC_BASE_URL", "")
    if not bot or not host:
        raise BuildError(
            "need --bot-app-id and --public-hostname (or OPENSLOT_BOT_APP_ID and OPENSLOT_PUBLIC_BASE_URL)"
        )
    bot = _guid("bot app id", bot)
    teams = args.teams_app_id or environ.get("OPENSLOT_TEAMS_APP_ID", "")
    teams = _guid("teams app id", teams) if teams else str(uuid.uuid5(APP_NAMESPACE, bot))
    hostname = _hostname(host)
    version = _version(args.version or environ.get("OPENSLOT_APP_VERSION", "") or project_version())
    privacy = args.privacy_url or environ.get("OPENSLOT_PRIVACY_URL", "") or f"https://{hostname}/privacy"
    terms = args.terms_url or environ.get("OPENSLOT_TERMS_URL", "") or f"https://{hostname}/terms"
    return {
        "BOT_APP_ID": bot,
        "TEAMS_APP_ID": teams,
        "PUBLIC_HOSTNAME": hostname,
        "VERSION": version,
        "PRIVACY_URL": _https_url("privacy URL", privacy),
        "TERMS_URL": _https_url("terms URL", terms),
    }


def build_package(values: Mapping[str, str], out: Path) -> Path:
    """Write the zip (manifest.json, color.png, outline.png at its root) and return its path.

    Raises:
        BuildError: on unfilled placeholders or a template that is not valid JSON.
    """
    text = fill_template((HERE / "manifest.template.json").read_text(encoding="utf-8"), values)
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BuildError("manifest template is not valid JSON") from exc
    entries = {
        "manifest.json": (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode(),
        "color.png": (HERE / "color.png").read_bytes(),
        "outline.png": (HERE / "outline.png").read_bytes(),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in entries.items():
            archive.writestr(
                zipfile.ZipInfo(name, date_time=ZIP_DATE), payload, compress_type=zipfile.ZIP_DEFLATED
            )
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build the OpenSlot Teams app package.")
    parser.add_argument("--bot-app-id", default="", help="Entra app (client) id of the bot")
    parser.add_argument(
        "--public-hostname", default="", help="public host of the bot, e.g. bot.contoso.com (or a base URL)"
    )
    parser.add_argument("--teams-app-id", default="", help="Teams app id (default: derived)")
    parser.add_argument(
        "--version",
        default="",
        help="package version MAJOR.MINOR.PATCH (default: pyproject's version); "
        "raise it for every update you upload",
    )
    parser.add_argument(
        "--privacy-url", default="", help="https privacy statement URL (default: the bot's /privacy)"
    )
    parser.add_argument("--terms-url", default="", help="https terms of use URL (default: the bot's /terms)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip file to write")
    return parser


def main(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    """Run the CLI; return the process exit code (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        out = build_package(resolve_values(args, environ), args.out)
    except BuildError as exc:
        sys.stderr.write(f"build.py: {exc}\n")
        return 2
    sys.stdout.write(f"{out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], os.environ))
