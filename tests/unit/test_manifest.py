"""Teams app package: template, build CLI, schema v1.30 validation, icons and zip contents.

The manifest JSON schema comes from npm `@microsoft/app-manifest` (tests/js, installed with
`npm ci` when missing). Its v1.30 schema has a `\\p{L}` pattern Python's `re` cannot compile, so
the `pattern` keyword is checked with the `regex` module instead.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

import jsonschema
import pytest
import regex
from jsonschema import validators

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "appManifest"
JS = ROOT / "tests" / "js"
SCHEMA = (
    JS
    / "node_modules"
    / "@microsoft"
    / "app-manifest"
    / "build"
    / "json-schemas"
    / "teams"
    / "v1.30"
    / "MicrosoftTeams.schema.json"
)
BOT_ID = "0f8c2a4e-5b6d-4e7f-8a9b-1c2d3e4f5a6b"
TEAMS_ID = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
HOST = "openslot.contoso.example"


def _run_build(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run build.py with only ``env`` as its environment: the caller's OPENSLOT_* never leak."""
    return subprocess.run(
        [sys.executable, str(APP / "build.py"), *args],
        capture_output=True,
        text=True,
        env=dict(env or {}),
        timeout=60,
        check=False,
    )


def _load_build_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openslot_app_build", APP / "build.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "openslot-teams-app.zip"
    result = _run_build(
        "--bot-app-id", BOT_ID, "--public-hostname", HOST, "--teams-app-id", TEAMS_ID, "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    return out


def _manifest(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert isinstance(manifest, dict)
    return manifest


def _regex_pattern(
    validator: object, pattern: str, instance: object, schema: object
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and regex.search(pattern, instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@pytest.fixture(scope="module")
def manifest_validator() -> jsonschema.Draft4Validator:
    npm = shutil.which("npm")
    if not SCHEMA.exists():
        if npm is None:
            pytest.skip("npm not available: cannot install @microsoft/app-manifest schemas")
        subprocess.run(
            [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund"],
            check=True,
            capture_output=True,
            timeout=300,
        )
    schema = json.loads(SCHEMA.read_text(encoding="utf-8-sig"))
    validator_class = validators.extend(jsonschema.Draft4Validator, {"pattern": _regex_pattern})
    return validator_class(schema)


def test_manifest_package_contains_exactly_manifest_and_icons(package: Path) -> None:
    with zipfile.ZipFile(package) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert archive.read("color.png") == (APP / "color.png").read_bytes()
        assert archive.read("outline.png") == (APP / "outline.png").read_bytes()


def test_manifest_validates_against_teams_v1_30_schema(
    package: Path, manifest_validator: jsonschema.Draft4Validator
) -> None:
    manifest = _manifest(package)
    assert manifest["manifestVersion"] == "1.30"
    assert manifest["$schema"] == (
        "https://developer.microsoft.com/json-schemas/teams/v1.30/MicrosoftTeams.schema.json"
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in manifest_validator.iter_errors(manifest)]
    assert errors == []


def test_manifest_schema_check_catches_a_bad_manifest(
    package: Path, manifest_validator: jsonschema.Draft4Validator
) -> None:
    manifest = _manifest(package)
    manifest["bots"][0]["scopes"] = ["everywhere"]  # type: ignore[index]
    manifest["accentColor"] = "blue"
    assert len(list(manifest_validator.iter_errors(manifest))) >= 2


def test_manifest_pattern_keyword_understands_unicode_classes() -> None:
    check = validators.extend(jsonschema.Draft4Validator, {"pattern": _regex_pattern})
    schema = {"type": "string", "pattern": r"^[\p{L}][\p{L}0-9._]*$"}
    assert check(schema).is_valid("Zeit_plan.1")
    assert not check(schema).is_valid("1abc")


def test_manifest_bot_sso_and_domains_are_filled(package: Path) -> None:
    manifest = _manifest(package)
    assert manifest["id"] == TEAMS_ID
    bots = manifest["bots"]
    assert isinstance(bots, list)
    (bot,) = bots
    assert bot["botId"] == BOT_ID
    assert set(bot["scopes"]) == {"personal", "team", "groupChat"}
    assert manifest["webApplicationInfo"] == {"id": BOT_ID, "resource": f"api://botid-{BOT_ID}"}
    assert manifest["validDomains"] == ["token.botframework.com", HOST]
    assert "${{" not in json.dumps(manifest)


def test_manifest_template_uses_exactly_the_documented_placeholders() -> None:
    text = (APP / "manifest.template.json").read_text(encoding="utf-8")
    found = set(regex.findall(r"\$\{\{([A-Z0-9_]+)\}\}", text))
    assert found == {"BOT_APP_ID", "TEAMS_APP_ID", "PUBLIC_HOSTNAME", "VERSION", "PRIVACY_URL", "TERMS_URL"}


def test_manifest_build_reads_environment_and_derives_stable_app_id(tmp_path: Path) -> None:
    env = {
        "OPENSLOT_BOT_APP_ID": BOT_ID.upper(),
        "OPENSLOT_PUBLIC_BASE_URL": f"https://{HOST}:443/api/messages",
    }
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    assert _run_build("--out", str(first), env=env).returncode == 0
    assert _run_build("--out", str(second), env=env).returncode == 0
    manifest = _manifest(first)
    assert manifest["bots"][0]["botId"] == BOT_ID  # type: ignore[index]
    assert manifest["validDomains"] == ["token.botframework.com", HOST]
    assert manifest["id"] not in (BOT_ID, TEAMS_ID)
    assert first.read_bytes() == second.read_bytes()  # deterministic package and app id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "need --bot-app-id"),
        (("--bot-app-id", BOT_ID), "need --bot-app-id"),
        (("--bot-app-id", "not-a-guid", "--public-hostname", HOST), "GUID"),
        (("--bot-app-id", BOT_ID, "--public-hostname", "bot.example/path"), "DNS name"),
        (("--bot-app-id", BOT_ID, "--public-hostname", HOST, "--teams-app-id", "x"), "GUID"),
        (("--bot-app-id", BOT_ID, "--public-hostname", "http://127.0.0.1:3978"), "https"),
        (("--bot-app-id", BOT_ID, "--public-hostname", "https://127.0.0.1:3978"), "IP address"),
        (("--bot-app-id", BOT_ID, "--public-hostname", "10.1.2.3"), "IP address"),
        (("--bot-app-id", BOT_ID, "--public-hostname", "localhost"), "public DNS name"),
        (("--bot-app-id", BOT_ID, "--public-hostname", "http://bot.contoso.com"), "https"),
        (("--bot-app-id", BOT_ID, "--public-hostname", HOST, "--version", "1.0"), "MAJOR"),
        (("--bot-app-id", BOT_ID, "--public-hostname", HOST, "--version", "v1.2.3"), "MAJOR"),
        (
            (
                "--bot-app-id",
                BOT_ID,
                "--public-hostname",
                HOST,
                "--privacy-url",
                "http://contoso.com/privacy",
            ),
            "privacy URL",
        ),
        (
            ("--bot-app-id", BOT_ID, "--public-hostname", HOST, "--terms-url", "https://192.168.0.1/terms"),
            "IP address",
        ),
    ],
)
def test_manifest_build_refuses_bad_input(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    out = tmp_path / "app.zip"
    result = _run_build(*args, "--out", str(out))
    assert result.returncode == 2
    assert message in result.stderr
    assert not out.exists()


def test_manifest_fill_template_refuses_unfilled_placeholders() -> None:
    build = _load_build_module()
    with pytest.raises(build.BuildError, match="PUBLIC_HOSTNAME, ZONE"):
        build.fill_template('{"a": "${{ZONE}}", "b": "${{PUBLIC_HOSTNAME}}"}', {})
    assert build.fill_template('"${{A}}-${{A}}"', {"A": "x"}) == '"x-x"'


def _png(path: Path) -> tuple[int, int, int, int, bytes]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height, depth, color_type = struct.unpack(">IIBB", data[16:26])
    idat, offset = b"", 8
    while offset < len(data):
        size, chunk = struct.unpack(">I4s", data[offset : offset + 8])
        if chunk == b"IDAT":
            idat += data[offset + 8 : offset + 8 + size]
        offset += 12 + size
    return width, height, depth, color_type, zlib.decompress(idat)


def _rgba_pixels(width: int, raw: bytes) -> list[tuple[int, ...]]:
    stride = 1 + 4 * width
    rows = [raw[i : i + stride] for i in range(0, len(raw), stride)]
    assert all(row[0] == 0 for row in rows), "only filter type 0 is expected"
    return [tuple(row[1 + 4 * x : 5 + 4 * x]) for row in rows for x in range(width)]


def test_manifest_color_icon_is_192_opaque() -> None:
    width, height, depth, color_type, raw = _png(APP / "color.png")
    assert (width, height, depth, color_type) == (192, 192, 8, 6)
    assert all(p[3] == 255 for p in _rgba_pixels(width, raw))


def test_manifest_outline_icon_is_32_white_on_transparent() -> None:
    width, height, depth, color_type, raw = _png(APP / "outline.png")
    assert (width, height, depth, color_type) == (32, 32, 8, 6)
    pixels = _rgba_pixels(width, raw)
    assert set(pixels) == {(0, 0, 0, 0), (255, 255, 255, 255)}


def test_manifest_version_defaults_to_the_project_version_and_can_be_raised(
    tmp_path: Path, manifest_validator: jsonschema.Draft4Validator
) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    base = ("--bot-app-id", BOT_ID, "--public-hostname", HOST)
    assert _run_build(*base, "--out", str(tmp_path / "a.zip")).returncode == 0
    assert _manifest(tmp_path / "a.zip")["version"] == project
    result = _run_build(*base, "--version", "2.4.1", "--out", str(tmp_path / "b.zip"))
    assert result.returncode == 0, result.stderr
    manifest = _manifest(tmp_path / "b.zip")
    assert manifest["version"] == "2.4.1"
    assert list(manifest_validator.iter_errors(manifest)) == []
    env = {
        "OPENSLOT_BOT_APP_ID": BOT_ID,
        "OPENSLOT_PUBLIC_BASE_URL": f"https://{HOST}",
        "OPENSLOT_APP_VERSION": "3.0.0",
    }
    assert _run_build("--out", str(tmp_path / "c.zip"), env=env).returncode == 0
    assert _manifest(tmp_path / "c.zip")["version"] == "3.0.0"


def test_manifest_links_the_bots_pages_or_the_admins_urls(
    tmp_path: Path, manifest_validator: jsonschema.Draft4Validator
) -> None:
    base = ("--bot-app-id", BOT_ID, "--public-hostname", HOST)
    assert _run_build(*base, "--out", str(tmp_path / "a.zip")).returncode == 0
    developer = _manifest(tmp_path / "a.zip")["developer"]
    assert isinstance(developer, dict)
    assert developer["privacyUrl"] == f"https://{HOST}/privacy"  # served by bot.py
    assert developer["termsOfUseUrl"] == f"https://{HOST}/terms"
    result = _run_build(
        *base,
        "--privacy-url",
        "https://contoso.com/legal/privacy",
        "--terms-url",
        "https://contoso.com/legal/terms",
        "--out",
        str(tmp_path / "b.zip"),
    )
    assert result.returncode == 0, result.stderr
    manifest = _manifest(tmp_path / "b.zip")
    assert manifest["developer"]["privacyUrl"] == "https://contoso.com/legal/privacy"  # type: ignore[index]
    assert manifest["developer"]["termsOfUseUrl"] == "https://contoso.com/legal/terms"  # type: ignore[index]
    assert list(manifest_validator.iter_errors(manifest)) == []


def test_make_package_installs_nothing() -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    # -W: as if the requirements had just changed, which would trigger `install` if it were a
    # prerequisite of `package`
    plan = subprocess.run(
        [make, "-n", "-W", "requirements.txt", "package"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert "appManifest/build.py" in plan
    assert "pip" not in plan
    assert "npm" not in plan
