"""The public candidate page on the real bot app, backed by the real Calendar Service + devtenant."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse

from calendar_backend import storage
from tests.candidate.conftest import Env, bot_instance
from tests.service.conftest import ALEX

SUBJECTS_AND_NAMES = (
    "CANARY-",
    "Adele",
    "Vance",
    "adelev",
    "Lee Gu",
    "leeg@",
    "Reorg",
    "acquisition",
    "busy",
    "oof",
    "tentative",
)


class _Forms(HTMLParser):
    """Collects forms (method, action, inputs), scripts and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.external: list[str] = []
        self.script_srcs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"method": a.get("method", "get"), "action": a.get("action"), "inputs": []})
        if tag == "input" and self.forms:
            self.forms[-1]["inputs"].append(a)
        if tag == "script" and "src" in a:
            self.script_srcs.append(a["src"])
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])


def parse(html: str) -> _Forms:
    forms = _Forms()
    forms.feed(html)
    return forms


def book_form(html: str) -> tuple[str, dict[str, str], list[str]]:
    """(action, hidden fields, slot ids) of the page's booking/reschedule form."""
    form = next(
        f
        for f in parse(html).forms
        if f["method"] == "post" and f["action"].endswith(("/book", "/reschedule"))
    )
    hidden = {i["name"]: i["value"] for i in form["inputs"] if i.get("type") == "hidden"}
    slots = [i["value"] for i in form["inputs"] if i.get("type") == "radio"]
    return form["action"], hidden, slots


def assert_security_headers(resp: ClientResponse) -> None:
    csp = resp.headers["Content-Security-Policy"]
    assert re.search(r"script-src 'nonce-[A-Za-z0-9_\-]{16,}'", csp)
    for part in ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "default-src 'none'"):
        assert part in csp
    assert "unsafe-inline" not in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"
    hsts = resp.headers["Strict-Transport-Security"]
    assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000  # type: ignore[union-attr]


async def test_scanners_then_one_post_books_once_and_second_post_is_409(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    url = f"/c/{token}"
    for _ in range(5):  # Safe Links and friends: HEAD and GET change nothing
        head = await env.bot.head(url)
        assert head.status == 200
        get = await env.bot.get(url)
        assert get.status == 200
    html = await get.text()
    action, hidden, slots = book_form(html)
    assert action == f"/c/{token}/book"
    assert slots
    _, listed = await env.stack.get("/v1/offers", env.stack.token())
    assert listed["offers"][0]["status"] == "open"
    assert env.teams.posted == []
    resp = await env.bot.post(action, data={**hidden, "slot": slots[0]}, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert_security_headers(resp)
    confirmation = await (await env.bot.get(resp.headers["Location"])).text()
    assert "Your interview is booked" in confirmation
    again = await env.bot.post(action, data={**hidden, "slot": slots[1]}, allow_redirects=False)
    assert again.status == 403  # the form's nonce was spent by the booking (single-use)
    assert_security_headers(again)
    cancel = next(f for f in parse(confirmation).forms if f["action"].endswith("/cancel"))
    fresh = {i["name"]: i["value"] for i in cancel["inputs"]}["nonce"]
    again = await env.bot.post(
        action, data={**hidden, "nonce": fresh, "slot": slots[1]}, allow_redirects=False
    )
    assert again.status == 409
    assert_security_headers(again)
    _status, listed = await env.stack.get("/v1/offers", env.stack.token())
    assert listed["offers"][0]["status"] == "booked"
    # The manager's Teams conversation got exactly one notice with the time.
    assert len(env.teams.posted) == 1
    notice = env.teams.posted[0]
    assert notice["_conversation"] == "a:conv-alex"
    assert "Dana Smith booked" in notice["text"]
    assert "UTC" in notice["text"]
    # And the event exists in devtenant, organised by Alex.
    events = (
        env.stack.devtenant.session()
        .get(f"{env.stack.devtenant.base_url}/_devtenant/mailboxes/{ALEX}/events", timeout=10)
        .json()
    )
    events = events.get("value", events) if isinstance(events, dict) else events
    mine = [e for e in events if e.get("subject") == "Interview: Dana Smith"]
    assert len(mine) == 2  # the panel's event and the candidate's own, both organised by Alex
    assert {e["organizer"]["emailAddress"]["address"].lower() for e in mine} == {ALEX}


async def test_post_without_or_with_forged_nonce_is_403(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    html = await (await env.bot.get(f"/c/{token}")).text()
    action, hidden, slots = book_form(html)
    resp = await env.bot.post(action, data={"slot": slots[0]})
    assert resp.status == 403
    forged = hidden["nonce"].split(".")[0] + "." + "0" * 64
    resp = await env.bot.post(action, data={**hidden, "nonce": forged, "slot": slots[0]})
    assert resp.status == 403
    other, _ = await env.make_offer([env.person("Megan Bowen")])
    resp = await env.bot.post(f"/c/{other}/book", data={**hidden, "slot": slots[0]})
    assert resp.status == 403  # a nonce is bound to its own link
    _status, listed = await env.stack.get("/v1/offers", env.stack.token())
    assert {o["status"] for o in listed["offers"]} == {"open"}


async def test_a_page_from_one_bot_instance_books_through_another(candidate_env: Env, tmp_path: Path) -> None:
    """Scale-out: instances of one deployment share the form key (derived from the app password, or
    OPENSLOT_BOT_FORM_KEY), so a page served by one can be posted to the other; a different
    deployment's key is refused."""
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    shared = {"OPENSLOT_BOT_APP_PASSWORD": "same-password-for-both-instances"}
    async with (
        bot_instance(env.stack, env.teams, tmp_path / "a.db", **shared) as first,
        bot_instance(env.stack, env.teams, tmp_path / "b.db", **shared) as second,
        bot_instance(
            env.stack,
            env.teams,
            tmp_path / "c.db",
            OPENSLOT_BOT_FORM_KEY=base64.b64encode(b"k" * 32).decode(),
        ) as other,
    ):
        action, hidden, slots = book_form(await (await first.get(f"/c/{token}")).text())
        refused = await other.post(action, data={**hidden, "slot": slots[0]}, allow_redirects=False)
        assert refused.status == 403
        booked = await second.post(action, data={**hidden, "slot": slots[0]}, allow_redirects=False)
        assert booked.status == 303, await booked.text()
    _status, listed = await env.stack.get("/v1/offers", env.stack.token())
    assert listed["offers"][0]["status"] == "booked"


async def test_page_shows_no_names_subjects_or_busy_reasons(candidate_env: Env) -> None:
    env = candidate_env
    people = [env.person("Adele Vance"), env.person("Lee Gu")]
    token, _ = await env.make_offer(people)
    resp = await env.bot.get(f"/c/{token}?tz=Europe/London")
    html = await resp.text()
    assert book_form(html)[2], "expected open times"
    for word in SUBJECTS_AND_NAMES:
        assert word.lower() not in html.lower(), word
    parsed = parse(html)
    assert parsed.external == []
    assert parsed.script_srcs == []
    assert_security_headers(resp)


async def test_manager_chosen_names_are_the_only_names(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")], show_interviewer_names=True)
    html = await (await env.bot.get(f"/c/{token}")).text()
    assert "<dd>Megan</dd>" in html  # first names only
    assert "meganb@" not in html.lower()
    assert "Bowen" not in html
    assert "CANARY" not in html
    hidden, _ = await env.make_offer([env.person("Megan Bowen")])
    assert "Megan" not in await (await env.bot.get(f"/c/{hidden}")).text()


async def test_slot_taken_between_load_and_post_shows_fresh_times(candidate_env: Env) -> None:
    env = candidate_env
    megan = env.person("Megan Bowen")
    token, _ = await env.make_offer([megan])
    html = await (await env.bot.get(f"/c/{token}")).text()
    action, hidden, slots = book_form(html)
    doc = await env.stack.post("/v1/candidate/slots", {"token": token})
    first = doc[1]["slots"][0]
    status, _ = await env.stack.post(
        "/v1/interviews",
        {
            "candidate": {"name": "Other Person", "email": "other@example.com"},
            "interviewers": [megan],
            "start": first["start"],
            "end": first["end"],
            "idempotency_key": "taken-1",
        },
        env.stack.token(),
    )
    assert status == 201
    resp = await env.bot.post(action, data={**hidden, "slot": slots[0]})
    assert resp.status == 409
    fresh = await resp.text()
    assert "just taken" in fresh
    _, new_hidden, fresh_slots = book_form(fresh)
    assert fresh_slots
    assert slots[0] not in fresh_slots
    ok = await env.bot.post(action, data={**new_hidden, "slot": fresh_slots[0]}, allow_redirects=False)
    assert ok.status == 303
    assert len(env.teams.posted) == 1


async def test_expired_or_revoked_link_is_410_with_headers(candidate_env: Env) -> None:
    env = candidate_env
    token, offer = await env.make_offer([env.person("Megan Bowen")])
    status, _ = await env.stack.post(f"/v1/offers/{offer['id']}/revoke", {}, env.stack.token())
    assert status == 200
    resp = await env.bot.get(f"/c/{token}")
    assert resp.status == 410
    assert_security_headers(resp)
    resp = await env.bot.get("/c/" + "A" * 43)
    assert resp.status == 404
    assert_security_headers(resp)


async def test_rate_limit_per_link_and_spoofed_forwarded_for_does_not_help(candidate_env: Env) -> None:
    env = candidate_env
    statuses = []
    for i in range(50):
        resp = await env.bot.get("/c/" + "B" * 43, headers={"X-Forwarded-For": f"10.0.0.{i}"})
        statuses.append(resp.status)
        if resp.status == 429:
            assert int(resp.headers["Retry-After"]) >= 1
            assert_security_headers(resp)
    assert 429 in statuses
    assert statuses.count(404) <= 40


async def test_cancel_from_confirmation_page_notifies_manager(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    html = await (await env.bot.get(f"/c/{token}")).text()
    action, hidden, slots = book_form(html)
    await env.bot.post(action, data={**hidden, "slot": slots[-1]})
    page = await (await env.bot.get(f"/c/{token}")).text()
    cancel = next(f for f in parse(page).forms if f["action"].endswith("/cancel"))
    fields = {i["name"]: i["value"] for i in cancel["inputs"]}
    resp = await env.bot.post(cancel["action"], data=fields)
    assert resp.status == 200
    assert resp.url.query.get("done") == "cancelled"  # redirected to the reopened link
    after = await resp.text()
    assert "Interview cancelled" in after
    assert book_form(after)[0].endswith("/book")  # changes are left: the link books again
    assert [p["text"].split(" ")[2] for p in env.teams.posted] == ["booked", "cancelled"]
    assert "open for a new booking" in env.teams.posted[-1]["text"]


async def test_page_speaks_the_browsers_language_and_canonical_zones(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")], role="Data Engineer")
    german = await (
        await env.bot.get(f"/c/{token}?tz=Asia/Calcutta", headers={"Accept-Language": "de-DE,de;q=0.9"})
    ).text()
    assert '<html lang="de">' in german
    assert re.search(r"(Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonntag), \d+\. ", german)
    assert '<option value="Asia/Kolkata" selected>India (IST, UTC+05:30)</option>' in german
    assert 'name="tz" value="Asia/Kolkata"' in german  # the forms post the canonical name
    for fact in ("Data Engineer", "Alex Wilber", "Microsoft Teams"):
        assert fact in german
    searched = await (await env.bot.get(f"/c/{token}?tz=UTC&tzq=new+york")).text()
    assert 'name="tz" value="America/New_York"' in searched
    unknown = await (await env.bot.get(f"/c/{token}?tz=Europe/Paris&tzq=atlantis")).text()
    assert 'name="tz" value="Europe/Paris"' in unknown
    assert "No time zone matches" in unknown


async def test_expired_and_withdrawn_links_say_which(candidate_env: Env) -> None:
    env = candidate_env
    token, offer = await env.make_offer([env.person("Megan Bowen")])
    await env.stack.post(f"/v1/offers/{offer['id']}/revoke", {}, env.stack.token())
    withdrawn = await env.bot.get(f"/c/{token}")
    assert withdrawn.status == 410
    assert "withdrew it" in await withdrawn.text()
    token, offer = await env.make_offer([env.person("Megan Bowen")])
    async with env.stack.runtime.store.transaction() as tx:
        await tx.execute(
            storage.offers.update()
            .where(storage.offers.c.id == offer["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    expired = await env.bot.get(f"/c/{token}")
    assert expired.status == 410
    assert "This link has expired" in await expired.text()


async def test_a_stale_tab_cancelling_again_lands_on_the_link_as_it_stands(candidate_env: Env) -> None:
    env = candidate_env
    token, _ = await env.make_offer([env.person("Megan Bowen")])
    action, hidden, slots = book_form(await (await env.bot.get(f"/c/{token}")).text())
    await env.bot.post(action, data={**hidden, "slot": slots[0]})
    tabs = []
    for _ in range(2):  # two tabs open on the booking, each with its own single-use form nonce
        page = await (await env.bot.get(f"/c/{token}")).text()
        cancel = next(f for f in parse(page).forms if f["action"].endswith("/cancel"))
        tabs.append((cancel["action"], {i["name"]: i["value"] for i in cancel["inputs"]}))
    assert (await env.bot.post(tabs[0][0], data=tabs[0][1])).status == 200
    again = await env.bot.post(tabs[1][0], data=tabs[1][1])  # the second tab
    assert again.status == 409
    html = await again.text()
    assert "as it stands now" in html
    assert book_form(html)[0].endswith("/book")  # and the way forward: the link books again
