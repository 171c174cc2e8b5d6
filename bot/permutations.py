"""Midjourney's permutation prompts: `a {red, green, blue} bird` is three jobs.

The options of a `{…}` are separated by commas; braces may nest and several groups multiply
(`{a, b} {c, d}` is four prompts). Flags can be permuted too (`--ar {1:1, 16:9}`). `\\,`
writes a comma inside an option, `\\{` and `\\}` a brace. As in Midjourney, one prompt makes at
most 40 jobs, its --repeat included. A prompt without braces is left as it is.

No library fits: braceexpand (bash's rules) keeps unbalanced braces as text, reads {1..3} as
a range and a one-option {a} as literal braces, where Midjourney drops them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from bot.prompt_flags import PromptError

MAX_JOBS = 40  # Midjourney's limit for one permutation prompt (its Pro and Mega plans)
_ESCAPED = "{},"

# _parse reads a prompt as a list of characters and groups; a group is a list of options,
# each again a list of characters and groups.


def expand_permutations(text: str, limit: int = MAX_JOBS) -> list[str]:
    """Every prompt that text's `{…}` groups stand for, in order; [text] when it has none."""
    if "{" not in text and "}" not in text:
        return [text]
    sequence = _parse(text)
    count = _count(sequence)
    if count > limit:
        raise PromptError(f"The {{…}} options in this prompt make {count} prompts: one prompt "
                          f"makes at most {limit} jobs (as in Midjourney); use fewer options.")
    return [prompt.strip() for prompt in _expand(sequence)]


def check_job_count(repeats: Sequence[int], limit: int = MAX_JOBS) -> None:
    """Permutations times --repeat (which may differ per permutation) stay within the limit."""
    total = sum(repeats)
    if total > limit:
        raise PromptError(f"{len(repeats)} prompts with their --repeat make {total} jobs: one "
                          f"prompt makes at most {limit} jobs (as in Midjourney); use fewer "
                          "options or a lower --repeat.")


def _parse(text: str) -> list:
    root: list = []
    current, open_groups = root, []  # open_groups: (the sequence around it, group, position)
    characters = iter(enumerate(text))
    for position, char in characters:
        if char == "\\" and text[position + 1:position + 2] in tuple(_ESCAPED):
            current.append(next(characters)[1])
        elif char == "{":
            group: list[list] = [[]]
            current.append(group)
            open_groups.append((current, group, position))
            current = group[0]
        elif char == "," and open_groups:
            open_groups[-1][1].append([])
            current = open_groups[-1][1][-1]
        elif char == "}":
            if not open_groups:
                raise PromptError(_unbalanced("}", position, "has no { before it"))
            current = open_groups.pop()[0]
        else:
            current.append(char)
    if open_groups:
        raise PromptError(_unbalanced("{", open_groups[-1][2], "is never closed with }"))
    return root


def _unbalanced(brace: str, position: int, problem: str) -> str:
    return (f"The {brace} at character {position + 1} {problem}: permutations are written "
            r"like `a {red, green} bird` (write \{ or \} for a brace itself).")


def _count(sequence: list) -> int:
    return math.prod(sum(_count(option) for option in item)
                     for item in sequence if isinstance(item, list))


def _expand(sequence: list) -> list[str]:
    prompts = [""]
    for item in sequence:
        if isinstance(item, str):
            prompts = [prompt + item for prompt in prompts]
        else:
            options = [text.strip() for option in item for text in _expand(option)]
            prompts = [prompt + option for prompt in prompts for option in options]
    return prompts
