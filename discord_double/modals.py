"""Modals: what the bot may show (Discord's limits), and a member filling one in.

A modal is an interaction's response (callback type 9), so it is the first and only answer
to that interaction; the member's submit is a new interaction (type 5, MODAL_SUBMIT)
carrying each field's value under its custom_id, wrapped as Discord wraps it: a text
input in an action row (legacy) or in a Label (type 18), selects and file uploads in a
Label. Files come as attachment ids with their objects under data.resolved.attachments.
"""

from __future__ import annotations

from discord_double.model import DiscordError, Interaction

MODAL_SUBMIT = 5
ROW, SELECT, TEXT_INPUT, LABEL, FILE_UPLOAD = 1, 3, 4, 18, 19
MAX_TITLE = MAX_LABEL = 45  # characters, a modal's title and a field's label
MAX_FIELDS = 5
MAX_TEXT = 4000  # characters in one text input
MAX_FILES = 10  # per file upload component


def check_modal(data: dict) -> None:
    """Refuse a modal Discord would refuse (400, code 50035), naming the field."""
    problems = {}
    if not 1 <= len(data.get("title") or "") <= MAX_TITLE:
        problems["title"] = f"Must be between 1 and {MAX_TITLE} in length."
    if not 1 <= len(data.get("custom_id") or "") <= 100:
        problems["custom_id"] = "Must be between 1 and 100 in length."
    if not 1 <= len(data.get("components") or []) <= MAX_FIELDS:
        problems["components"] = f"Must be between 1 and {MAX_FIELDS} in length."
    for index, field in enumerate(fields_of(data)):
        problem = _field_problem(field)
        if problem:
            problems[f"components.{index}"] = problem
    if problems:
        raise DiscordError(400, 50035, "Invalid Form Body", problems)


def _field_problem(field: dict) -> str | None:
    if not 1 <= len(field.get("custom_id") or "") <= 100:
        return "custom_id: Must be between 1 and 100 in length."
    if field["type"] == TEXT_INPUT and len(field.get("label") or "x") > MAX_LABEL:
        return f"label: Must be {MAX_LABEL} or fewer in length."
    if field["type"] == SELECT and not 1 <= len(field.get("options") or []) <= 25:
        return "options: Must be between 1 and 25 in length."
    if field["type"] not in (TEXT_INPUT, SELECT, FILE_UPLOAD):
        return f"type: Component type {field['type']} is not allowed in a modal here."
    return None


def fields_of(modal: dict) -> list[dict]:
    """The modal's input components, unwrapped from their rows and labels."""
    found = []
    for component in modal.get("components") or []:
        if component["type"] == ROW:
            found += component.get("components") or []
        elif component["type"] == LABEL:
            found.append(component["component"])
    return found


def submission(modal: dict, values: dict, attachments: dict) -> tuple[dict, dict]:
    """(data.components, data.resolved) of a submit: values maps custom_id → text for a
    text input, a list of option values for a select, a list of upload() results for a
    file upload. A required field left empty, or a value the field cannot take, is an
    AssertionError: Discord's client would not let the member submit it."""
    unknown = set(values) - {f["custom_id"] for f in fields_of(modal)}
    if unknown:
        raise AssertionError(f"the modal has no field(s) {sorted(unknown)}")
    components, resolved = [], {}
    for component in modal["components"]:
        inner = component["components"][0] if component["type"] == ROW else component.get(
            "component")
        if inner is None:
            continue
        answer = _answer(inner, values.get(inner["custom_id"]), resolved)
        components.append({"type": ROW, "components": [answer]} if component["type"] == ROW
                          else {"type": LABEL, "component": answer})
    if resolved:
        attachments.update(resolved)
    return components, ({"attachments": resolved} if resolved else {})


def _answer(field: dict, value, resolved: dict) -> dict:
    kind, custom_id = field["type"], field["custom_id"]
    if kind == TEXT_INPUT:
        return {"type": kind, "custom_id": custom_id, "value": _text(field, value)}
    chosen = list(value or [])
    low, high = _given(field, "min_values", 1), _given(field, "max_values", 1)
    if field.get("required", True) is False and not chosen:
        low = 0
    if not low <= len(chosen) <= high:
        raise AssertionError(f"{custom_id}: choose {low} to {high}, not {len(chosen)}")
    if kind == FILE_UPLOAD:
        resolved.update({item["id"]: item for item in chosen})
        return {"type": kind, "custom_id": custom_id, "values": [i["id"] for i in chosen]}
    allowed = {option["value"] for option in field.get("options") or []}
    if not set(chosen) <= allowed:
        raise AssertionError(f"{custom_id}: {sorted(set(chosen) - allowed)} are not options")
    return {"type": kind, "custom_id": custom_id, "values": chosen}


def _given(field: dict, key: str, default: int) -> int:
    # discord.py sends unset limits as null; Discord then applies its default (1).
    value = field.get(key)
    return default if value is None else value


def _text(field: dict, value: str | None) -> str:
    text = value if value is not None else (field.get("value") or "")
    if field.get("required", True) and not text:
        raise AssertionError(f"{field['custom_id']} is required")
    low, high = _given(field, "min_length", 0), _given(field, "max_length", MAX_TEXT)
    if text and not low <= len(text) <= high:
        raise AssertionError(f"{field['custom_id']}: {low} to {high} characters, "
                             f"not {len(text)}")
    return text


class ModalActions:
    """The double's side of modals, mixed into DiscordDouble."""

    def shown_modal(self, interaction: Interaction) -> dict:
        """The modal the bot answered interaction with (custom_id, title, components)."""
        if interaction.modal is None:
            raise AssertionError(f"interaction {interaction.id} was not answered with a "
                                 f"modal; callbacks: {interaction.callbacks}")
        return interaction.modal

    async def submit_modal(self, member: str, interaction: Interaction,
                           values: dict) -> Interaction:
        """member fills in and submits the modal interaction was answered with."""
        modal = self.shown_modal(interaction)
        components, resolved = submission(modal, values, {})
        data = {"custom_id": modal["custom_id"], "components": components,
                "resolved": resolved}
        channel = next(n for n, c in self.channels.items()
                       if int(c["id"]) == interaction.channel_id)
        return await self._interact(member, channel, MODAL_SUBMIT, data,
                                    message=interaction.payload.get("message"))
