"""The candidate page's pure parts: zones as people name them, best-first times, the browser's
language, one-sentence states, branding files."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from calendar_backend import errors
from calendar_backend.branding import MAX_LOGO_BYTES, load_branding
from cards.candidate_zones import COMMON_ZONES, canonical_zone, find_zone, zone_title
from dialogs.candidate_page import state_message
from dialogs.candidate_view import (
    BookingView,
    Company,
    PageContext,
    SlotChoice,
    best_first,
    negotiate_locale,
    render_booking_page,
    render_confirmation_page,
)

KOLKATA = ZoneInfo("Asia/Kolkata")


def _slot(hour: int, minute: int = 0, day: int = 16, zone: ZoneInfo = KOLKATA) -> SlotChoice:
    start = datetime(2026, 12, day, hour, minute, tzinfo=zone).astimezone(UTC)
    return SlotChoice(start.strftime("%Y%m%dT%H%MZ"), start, start + timedelta(minutes=45))


def _ctx(locale: str = "en", day: date | None = None) -> PageContext:
    return PageContext("/c/tok", "csp", "nonce", KOLKATA, locale=locale, day=day)


def test_legacy_zone_names_are_canonical() -> None:
    assert canonical_zone("Asia/Calcutta") == "Asia/Kolkata"
    assert canonical_zone("US/Eastern") == "America/New_York"
    assert canonical_zone("Europe/Kiev") == "Europe/Kyiv"
    assert canonical_zone("Mars/Olympus") is None
    assert canonical_zone("../../etc/passwd") is None
    assert all(canonical_zone(z) == z for z, _ in COMMON_ZONES)


def test_zones_are_named_the_way_people_say_them() -> None:
    winter = datetime(2026, 1, 15, tzinfo=UTC)
    assert zone_title("Asia/Kolkata", winter) == "India (IST, UTC+05:30)"
    assert zone_title("Asia/Kathmandu", winter) == "Nepal (UTC+05:45)"
    assert zone_title("America/New_York", winter) == "US Eastern (EST, UTC-05:00)"
    assert find_zone("kolkata") == "Asia/Kolkata"
    assert find_zone("Calcutta") == "Asia/Kolkata"
    assert find_zone("new york") == "America/New_York"
    assert find_zone("India") == "Asia/Kolkata"
    assert find_zone("<script>") is None


def test_times_inside_the_candidates_day_come_best_first_and_the_rest_fold_away() -> None:
    slots = [_slot(7, 30), _slot(8), _slot(11), _slot(15, 15), _slot(19, 15), _slot(19, 30), _slot(21, 30)]
    inside, outside = best_first(slots, KOLKATA, (8, 20))
    assert [s.start.astimezone(KOLKATA).hour for s in inside] == [11, 15, 8, 19]
    assert [s.start.astimezone(KOLKATA).strftime("%H:%M") for s in outside] == [
        "07:30",
        "19:30",
        "21:30",
    ]  # 19:30-20:15 ends after 20:00
    late_manager = best_first(slots, KOLKATA, (6, 23))
    assert late_manager[1] == []


def test_browser_language_picks_the_locale() -> None:
    assert negotiate_locale("de-DE,de;q=0.9,en;q=0.8") == "de"
    assert negotiate_locale("fr-CH, fr;q=0.9") == "fr"
    assert negotiate_locale("en-GB,en;q=0.5") == "en_GB"
    assert negotiate_locale("xx-YY") == "en"
    assert negotiate_locale(None) == "en"
    assert negotiate_locale("en;q=0.1,de;q=0.9") == "de"


def _view(**kw: object) -> BookingView:
    base: dict[str, object] = {
        "duration_min": 45,
        "display_names": ("Megan",),
        "slots": (_slot(11), _slot(21, 30), _slot(10, day=17)),
    }
    base.update(kw)
    return BookingView(**base)  # type: ignore[arg-type]


def test_page_shows_company_role_and_first_names_escaped_and_a_day_picker() -> None:
    view = _view(
        company=Company("Contoso <b>", "data:image/svg+xml;base64,AAAA"),
        role="Engineer <script>",
        organizer="Alex Wilber",
    )
    html = render_booking_page(_ctx(), view)
    assert "Contoso &lt;b&gt;" in html
    assert "Engineer &lt;script&gt;" in html
    assert "<dd>Megan</dd>" in html
    assert "Alex Wilber" in html
    assert "Microsoft Teams" in html
    assert 'src="data:image/svg+xml;base64,AAAA"' in html
    assert html.count('type="radio"') == 2  # the 16th only; the 17th is one click away
    assert "day=2026-12-17" in html
    assert 'aria-current="date"' in html
    assert "<details><summary>Show early and late time (1," in html
    other_day = render_booking_page(_ctx(day=date(2026, 12, 17)), view)
    assert other_day.count('type="radio"') == 1
    late_only = render_booking_page(_ctx(), _view(slots=(_slot(11), _slot(22, day=18))))
    assert "18, 2026, 1 open time, all early or late" in late_only
    assert '17, 2026, 1 open time"' in html  # 10:00 is inside the day: no "early or late"
    not_an_image = render_booking_page(_ctx(), _view(company=Company("C", "javascript:x")))
    assert "javascript:" not in not_an_image


def test_dates_follow_the_browser_language() -> None:
    html = render_booking_page(_ctx("de"), _view())
    assert "Mittwoch, 16. Dezember 2026" in html
    assert 'lang="de"' in html
    assert "11:00\u201311:45 IST" in html


def test_change_counts_read_as_english() -> None:
    booked = (_slot(11).start, _slot(11).end)
    for left, text in ((1, "move it once more"), (2, "move it 2 more times")):
        html = render_confirmation_page(
            _ctx(), _view(booked=booked, status="confirmed", can_change=True, changes_left=left)
        )
        assert text in html
        assert "(s)" not in html


@pytest.mark.parametrize(
    "err",
    [
        errors.NotFoundError(),
        errors.GoneError("This link has expired."),
        errors.GoneError("This link was withdrawn."),
        errors.ConflictError(),
        errors.RateLimitedError(3),
        errors.PermissionDeniedError(),
        errors.UpstreamError(),
    ],
)
def test_every_state_says_what_happened_and_what_next_in_one_sentence(err: errors.CalendarError) -> None:
    title, text = state_message(err)
    assert title
    assert text.endswith(".")
    assert text.count(". ") == 0
    assert " so please " in text or "; " in text


def test_branding_file(tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(b"\x89PNG....")
    (tmp_path / "b.json").write_text(
        '{"default": {"company_name": "Contoso", "logo": "logo.png"},'
        ' "tenants": {"t1": {"company_name": "Fabrikam"}}}'
    )
    brands = load_branding(tmp_path / "b.json")
    assert brands["*"].logo.startswith("data:image/png;base64,")
    assert brands["t1"].company_name == "Fabrikam"
    assert brands["t1"].logo == ""
    (tmp_path / "big.png").write_bytes(b"x" * (MAX_LOGO_BYTES + 1))
    (tmp_path / "bad.json").write_text('{"default": {"company_name": "C", "logo": "big.png"}}')
    with pytest.raises(errors.ValidationError):
        load_branding(tmp_path / "bad.json")
    (tmp_path / "html.json").write_text('{"default": {"company_name": "C", "logo": "x.html"}}')
    with pytest.raises(errors.ValidationError):
        load_branding(tmp_path / "html.json")
