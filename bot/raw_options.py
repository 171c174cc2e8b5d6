"""Slash command options checked as they arrive, before any command runs.

Discord's client enforces each option's type, range, length and choices, but the
interaction payload is an input like any other: a forged or buggy client can send any
names, types and values, and discord.py hands them to the command unchecked (a string
where an integer belongs, 10**30 for a job number, an aspect that is not a choice). So
each payload is checked against the command's own declared options here, and a member
is told in one sentence what is wrong and what is allowed.
"""

from __future__ import annotations

import unicodedata

from discord import AppCommandOptionType as Kind
from discord import app_commands

DISCORD_MAX_STRING = 6000  # the most characters Discord lets a string option hold
DISCORD_MAX_INTEGER = 2**53  # Discord's integer options lie within ±2^53
# What each option type must arrive as (bool is an int in Python, so it is excluded).
_IS = {Kind.string: lambda v: isinstance(v, str),
       Kind.integer: lambda v: isinstance(v, int) and not isinstance(v, bool),
       Kind.number: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
       Kind.boolean: lambda v: isinstance(v, bool)}
_WHAT = {Kind.string: "text", Kind.integer: "a whole number", Kind.number: "a number",
         Kind.boolean: "true or false"}


def option_problem(command: app_commands.Command | None, options: object) -> str | None:
    """What is wrong with the options sent for command, for the member; None if nothing
    (command None: the payload could not even be read as a command's options)."""
    if command is None or not isinstance(options, list) or not all(
            isinstance(o, dict) for o in options):
        return "That command arrived in a shape I cannot read; use it from Discord's menu."
    if not isinstance(command, app_commands.Command):
        return None
    declared = {p.display_name: p for p in command.parameters}
    for option in options:
        problem = _one_problem(command, declared, option)
        if problem:
            return problem
    sent = {option.get("name") for option in options}
    missing = [name for name, p in declared.items() if p.required and name not in sent]
    if missing:
        return f"/{command.qualified_name} needs its {missing[0]} option."
    return None


def _one_problem(command, declared: dict, option: dict) -> str | None:
    name, value = option.get("name"), option.get("value")
    parameter = declared.get(name)
    if parameter is None:
        known = ", ".join(declared) or "none"
        return (f"/{command.qualified_name} has no option named {_plain(name)}; its "
                f"options: {known}.")
    if parameter.type not in _IS:  # users, channels, attachments: resolved by discord.py
        return None
    # discord.py reads the value by the type sent, so a forged type must not pass either.
    if option.get("type") != parameter.type.value or not _IS[parameter.type](value):
        return f"The {name} option must be {_WHAT[parameter.type]}."
    if parameter.type is Kind.string:
        return _text_problem(name, value, parameter)
    return _number_problem(name, value, parameter)


def _text_problem(name: str, value: str, parameter) -> str | None:
    most = min(parameter.max_value or DISCORD_MAX_STRING, DISCORD_MAX_STRING)
    if len(value) > most:
        return f"The {name} option is {len(value)} characters long: at most {most} are allowed."
    problem = text_problem(name, value)
    if problem:
        return problem
    return _choice_problem(name, value, parameter)


def _number_problem(name: str, value: float, parameter) -> str | None:
    low, high = parameter.min_value, parameter.max_value
    if not _within(value, low, high):  # also false for NaN
        return f"The {name} option is {_number(value)}: {_range(low, high)}."
    return _choice_problem(name, value, parameter)


def _within(value: float, low: float | None, high: float | None) -> bool:
    low = -DISCORD_MAX_INTEGER if low is None else low
    high = DISCORD_MAX_INTEGER if high is None else high
    return low <= value <= high


def _range(low: float | None, high: float | None) -> str:
    if low is not None and high is None:
        return f"it must be at least {_number(low)}"
    if high is not None and low is None:
        return f"it must be at most {_number(high)}"
    if low is None:
        low, high = -DISCORD_MAX_INTEGER, DISCORD_MAX_INTEGER  # Discord's own range
    return f"allowed {_number(low)} to {_number(high)}"


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _choice_problem(name: str, value, parameter) -> str | None:
    if parameter.choices and value not in [choice.value for choice in parameter.choices]:
        allowed = ", ".join(str(choice.value) for choice in parameter.choices)
        return f"The {name} option must be one of its choices: {allowed}."
    return None


def text_problem(name: str, text: str) -> str | None:
    """A member's text may hold no control characters (NUL included) and no lone
    surrogates (half of a UTF-16 pair: no UTF-8 text, database or model can hold one)."""
    for char in text:
        category = unicodedata.category(char)
        if category == "Cs":
            return (f"The {name} option holds a broken character (half of a UTF-16 pair, "
                    f"U+{ord(char):04X}); type or paste it again as plain text.")
        if category == "Cc" and char not in "\t\n\r":
            return (f"The {name} option holds the control character U+{ord(char):04X}: "
                    "plain text only (tabs and line breaks are fine).")
    return None


def _plain(name: object) -> str:
    """A name the member sent, shown safely: short, and without its odd characters."""
    text = str(name)[:40]
    return "“" + "".join(c if c.isprintable() else "?" for c in text) + "”"
