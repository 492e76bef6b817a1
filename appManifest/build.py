"""Builds the Teams app package: manifest.json (from the template) + color.png + outline.png.

Usage::

    python appManifest/build.py --bot-app-id GUID --public-hostname bot.contoso.com \
        [--teams-app-id GUID] [--out build/openslot-teams-app.zip]

Missing flags fall back to ``OPENSLOT_BOT_APP_ID``, ``OPENSLOT_PUBLIC_BASE_URL`` (its host name)
and ``OPENSLOT_TEAMS_APP_ID``. Without a Teams app id, a stable one is derived from the bot id
(uuid5), so rebuilding never changes the app's identity. The build refuses to write a package
while any ``${{PLACEHOLDER}}`` is left unfilled, or when an id is not a GUID or the host name is
not a bare DNS name. The zip is deterministic (fixed timestamps, fixed order).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
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
HOSTNAME: Final = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                             r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
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
    host = (urlsplit(value).hostname or "") if "://" in value else value.lower()
    if HOSTNAME.fullmatch(host) is None:
        raise BuildError("public hostname must be a bare DNS name such as bot.contoso.com")
    return host


def resolve_values(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, str]:
    """Return the placeholder values from flags, else the environment.

    Raises:
        BuildError: if the bot app id or public host is missing or malformed.
    """
    bot = args.bot_app_id or environ.get("OPENSLOT_BOT_APP_ID", "")
    host = args.public_hostname or environ.get("OPENSLOT_PUBLIC_BASE_URL", "")
    if not bot or not host:
        raise BuildError("need --bot-app-id and --public-hostname "
                         "(or OPENSLOT_BOT_APP_ID and OPENSLOT_PUBLIC_BASE_URL)")
    bot = _guid("bot app id", bot)
    teams = args.teams_app_id or environ.get("OPENSLOT_TEAMS_APP_ID", "")
    teams = _guid("teams app id", teams) if teams else str(uuid.uuid5(APP_NAMESPACE, bot))
    return {"BOT_APP_ID": bot, "TEAMS_APP_ID": teams, "PUBLIC_HOSTNAME": _hostname(host)}


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
            archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), payload,
                             compress_type=zipfile.ZIP_DEFLATED)
    return out


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Build the OpenSlot Teams app package.")
    parser.add_argument("--bot-app-id", default="", help="Entra app (client) id of the bot")
    parser.add_argument("--public-hostname", default="",
                        help="public host of the bot, e.g. bot.contoso.com (or a base URL)")
    parser.add_argument("--teams-app-id", default="", help="Teams app id (default: derived)")
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
