"""Loop builder: pick a saved loop template, or build a loop (sessions, people, order, breaks, days).

The builder's inputs travel only with its own "Find loop times" button (``loop_find``): when saved
templates are listed (each with "Use" and "Edit"), the form sits in a "Build a new loop" ShowCard,
so a template button never carries half-typed inputs. Editing a template (``draft`` given) shows
the form prefilled, without the list. ``problems`` (the template checker's sentences, e.g.
``Session 2 "System design": minutes must be ...``) are shown above the form, literally.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from cards.actions import build_refresh
from cards.elements import action_set, build_card, heading, note, plain
from cards.loop_actions import BUILDER_ROWS, LoopAction, LoopBuilderInput, LoopVerb, build_loop_execute
from cards.loop_views import TemplateView

__all__ = ["MAX_TEMPLATES", "build_loop_builder"]

MAX_TEMPLATES: Final = 10
MINUTES: Final = tuple(range(15, 241, 15))
BREAKS: Final = (0, 5, 10, 15, 30, 60)
DAYS: Final = (1, 2, 3)
DEFAULT_MINUTES: Final = 45


def _choices(values: Sequence[int], unit: str) -> list[dict[str, str]]:
    return [{"title": f"{v} {unit}" if unit else str(v), "value": str(v)} for v in values]


def _choice_set(input_id: str, label: str, choices: list[dict[str, str]], value: str) -> dict[str, object]:
    return {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": label,
        "style": "compact",
        "value": value,
        "choices": choices,
    }


def _text_input(input_id: str, label: str, value: str, placeholder: str, limit: int) -> dict[str, object]:
    field: dict[str, object] = {
        "type": "Input.Text",
        "id": input_id,
        "label": label,
        "placeholder": placeholder,
        "maxLength": limit,
    }
    if value:
        field["value"] = value
    return field


def _toggle(input_id: str, title: str, on: bool) -> dict[str, object]:
    return {
        "type": "Input.Toggle",
        "id": input_id,
        "title": title,
        "value": "true" if on else "false",
        "valueOn": "true",
        "valueOff": "false",
        "wrap": True,
    }


def _column(item: dict[str, object], width: str = "stretch") -> dict[str, object]:
    return {"type": "Column", "width": width, "items": [item]}


def _session_row(index: int, draft: LoopBuilderInput) -> dict[str, object]:
    row = draft.sessions[index] if index < len(draft.sessions) else None
    minutes = row.minutes if row and row.minutes in MINUTES else DEFAULT_MINUTES
    return {
        "type": "ColumnSet",
        "columns": [
            _column(
                _text_input(
                    f"s{index}_title", f"Session {index + 1}", row.title if row else "", "e.g. Intro", 80
                )
            ),
            _column(
                _choice_set(f"s{index}_minutes", "Length", _choices(MINUTES, "min"), str(minutes)), "auto"
            ),
            _column(
                _text_input(
                    f"s{index}_people",
                    "Interviewers",
                    ", ".join(row.people) if row else "",
                    "Names or emails, comma-separated",
                    400,
                )
            ),
        ],
    }


def _form(flow: str, draft: LoopBuilderInput) -> list[dict[str, object]]:
    max_break = draft.max_break if draft.max_break in BREAKS else 15
    max_days = draft.max_days if draft.max_days in DAYS else 1
    order_choices = [{"title": "In this order", "value": "fixed"}, {"title": "Any order", "value": "free"}]
    action = LoopAction(LoopVerb.FIND, flow, builder=LoopBuilderInput())
    find = build_loop_execute("Find loop times", action, style="positive")
    return [
        _text_input("name", "Loop name", draft.name, "e.g. Backend engineer onsite", 80),
        *(_session_row(i, draft) for i in range(BUILDER_ROWS)),
        {
            "type": "ColumnSet",
            "columns": [
                _column(_choice_set("order", "Order", order_choices, draft.order)),
                _column(_choice_set("max_break", "Breaks up to", _choices(BREAKS, "min"), str(max_break))),
                _column(_choice_set("max_days", "Days", _choices(DAYS, ""), str(max_days))),
            ],
        },
        _toggle("lunch", "Include lunch (45 min, 11:30\u201313:30)", draft.lunch),
        _toggle("save", "Save as a template for next time", draft.save),
        action_set([find]),
    ]


def _template_row(flow: str, template: TemplateView) -> dict[str, object]:
    texts = [plain(template.name, weight="Bolder")] + (
        [plain(template.summary, subtle=True)] if template.summary else []
    )
    use = build_loop_execute("Use", LoopAction(LoopVerb.USE_TEMPLATE, flow, template_id=template.template_id))
    edit = build_loop_execute(
        "Edit", LoopAction(LoopVerb.EDIT_TEMPLATE, flow, template_id=template.template_id)
    )
    return {
        "type": "ColumnSet",
        "separator": True,
        "columns": [
            {"type": "Column", "width": "stretch", "verticalContentAlignment": "Center", "items": texts},
            {"type": "Column", "width": "auto", "items": [action_set([use, edit])]},
        ],
    }


def build_loop_builder(
    flow: str,
    templates: Sequence[TemplateView] = (),
    *,
    draft: LoopBuilderInput | None = None,
    problems: Sequence[str] = (),
    user_ids: tuple[str, ...] = (),
) -> dict[str, object]:
    """The "schedule a loop" card: saved templates (at most ``MAX_TEMPLATES``) and the builder."""
    body: list[dict[str, object]] = [heading("Schedule an interview loop")]
    if problems:
        body.append(note("Please fix this first:", color="Attention"))
        body.extend(plain(problem) for problem in problems)
    listed = [] if draft is not None else list(templates[:MAX_TEMPLATES])
    form = _form(flow, draft or LoopBuilderInput())
    if listed:
        body.append(note("Start from a saved loop:", subtle=True))
        body.extend(_template_row(flow, t) for t in listed)
        show: dict[str, object] = {
            "type": "Action.ShowCard",
            "title": "Build a new loop",
            "card": {"type": "AdaptiveCard", "body": form},
        }
        body.append(action_set([show]))
    else:
        body.append(note("Sessions run one after the other; leave a row empty to skip it.", subtle=True))
        body.extend(form)
    refresh = build_refresh(flow, user_ids) if user_ids else None
    return build_card(body, fallback_text="Schedule an interview loop in OpenSlot.", refresh=refresh)
