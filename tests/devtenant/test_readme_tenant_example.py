"""devtenant/README.md's tenant-file example registers the app as `slots` and sign-in need it
(issue 15): the identifier URI `api://botid-<appId>` and the CLI redirect URI."""

from __future__ import annotations

import json
import re
from pathlib import Path

from calendar_backend.cli_slots import CLI_REDIRECT_URI

ROOT = Path(__file__).resolve().parents[2]


def _example() -> str:
    text = (ROOT / "devtenant" / "README.md").read_text(encoding="utf-8")
    section = text.split("## The tenant file", 1)[1]
    return section.split("```jsonc", 1)[1].split("```", 1)[0]


def _json_value(example: str, key: str) -> list[str]:
    """The JSON array after `"key":`, comments between its lines removed."""
    raw = example.split(f'"{key}":', 1)[1]
    raw = re.sub(r"(?<!:)//[^\n]*", "", raw)  # comments, not the // of a URI
    return list(json.loads(raw[: raw.index("]") + 1]))


def test_the_example_app_exposes_api_botid_app_id_and_the_cli_redirect() -> None:
    example = _example()
    app_id = re.search(r'"appId": "([^"]+)"', example)
    assert app_id is not None
    assert _json_value(example, "identifierUris") == [f"api://botid-{app_id.group(1)}"]
    assert CLI_REDIRECT_URI in _json_value(example, "redirectUris")


def test_the_sample_tenant_registers_the_app_the_same_way() -> None:
    sample = json.loads((ROOT / "devtenant" / "tenants" / "sample.json").read_text(encoding="utf-8"))
    app = sample["applications"][0]
    assert app["identifierUris"] == [f"api://botid-{app['appId']}"]
    assert CLI_REDIRECT_URI in app["redirectUris"]
