"""Tenant branding for the candidate page: a company name and logo per tenant.

``OPENSLOT_BRANDING_FILE`` names a JSON document::

    {"tenants": {"<tenant id>": {"company_name": "Contoso", "logo": "contoso.svg"}},
     "default": {"company_name": "...", "logo": "..."}}

``logo`` is a file path relative to the JSON file: PNG, JPEG, WebP or SVG, at most 64 KiB. It is read
once at start-up and handed to the page as a ``data:`` URI (the page loads nothing from anywhere; an SVG
shown through ``<img>`` runs no script and fetches nothing). ``default`` (key ``*``) applies to tenants
not listed.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from pathlib import Path

from calendar_backend.errors import ValidationError

MAX_LOGO_BYTES = 64 * 1024
_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
_NAME = re.compile(r"^[^\x00-\x1f<>]{1,80}$")


@dataclass(frozen=True, slots=True)
class Branding:
    """What a candidate sees of the company: its name and logo (``data:`` URI or empty)."""

    company_name: str
    logo: str = ""

    def to_json(self) -> dict[str, str]:
        return {"name": self.company_name, "logo": self.logo}


def load_branding(path: Path | None) -> dict[str, Branding]:
    """Tenant id (or ``*`` for the default) → branding; ``{}`` without a file.

    Raises:
        ValidationError: the file, a name or a logo is not acceptable.
    """
    if path is None:
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValidationError("OPENSLOT_BRANDING_FILE", "must be a readable JSON file") from exc
    entries = dict(doc.get("tenants") or {})
    if doc.get("default"):
        entries["*"] = doc["default"]
    return {str(tid): _entry(path.parent, spec) for tid, spec in entries.items()}


def _entry(base: Path, spec: dict[str, str]) -> Branding:
    name = str(spec.get("company_name", "")).strip()
    if not _NAME.fullmatch(name):
        raise ValidationError("OPENSLOT_BRANDING_FILE", "company_name must be 1-80 plain characters")
    logo = str(spec.get("logo", "")).strip()
    return Branding(name, _data_uri(base / logo) if logo else "")


def _data_uri(path: Path) -> str:
    kind = _TYPES.get(path.suffix.lower())
    if kind is None:
        raise ValidationError("OPENSLOT_BRANDING_FILE", "logo must be PNG, JPEG, WebP or SVG")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError("OPENSLOT_BRANDING_FILE", "logo is not readable") from exc
    if len(raw) > MAX_LOGO_BYTES:
        raise ValidationError("OPENSLOT_BRANDING_FILE", "logo is larger than 64 KiB")
    return f"data:{kind};base64,{base64.b64encode(raw).decode()}"
