"""Permutation prompts: `a {red, green, blue} bird` is three prompts (Midjourney's rules)."""

from __future__ import annotations

import re

import pytest

from bot.permutations import MAX_JOBS, check_job_count, expand_permutations
from bot.prompt import PromptError, parse_prompt


@pytest.mark.parametrize(("text", "prompts"), [
    ("a {red, green, blue} bird", ["a red bird", "a green bird", "a blue bird"]),
    ("a {red, blue} {owl, fox}", ["a red owl", "a red fox", "a blue owl", "a blue fox"]),
    ("a {red {dark, light}, blue} bird", ["a red dark bird", "a red light bird", "a blue bird"]),
    (r"a {red\, hot, cold} fox", ["a red, hot fox", "a cold fox"]),
    (r"a \{literal\} brace {x, y}", ["a {literal} brace x", "a {literal} brace y"]),
    ("a fox --ar {1:1, 16:9}", ["a fox --ar 1:1", "a fox --ar 16:9"]),
    ("a {single} fox", ["a single fox"]),
    ("no braces, a\\,b", ["no braces, a\\,b"]),  # a prompt without braces is left as it is
])
def test_each_option_is_its_own_prompt(text, prompts):
    assert expand_permutations(text) == prompts


def test_permuted_flags_are_read_per_prompt():
    parsed = [parse_prompt(text) for text in expand_permutations("a fox --ar {1:1, 16:9}")]
    assert [p.aspect for p in parsed] == [(1, 1), (16, 9)]


@pytest.mark.parametrize(("text", "message"), [
    ("a {red, green fox", "The { at character 3 is never closed with }"),
    ("a red} fox", "The } at character 6 has no { before it"),
    ("{a {b, c} d", "The { at character 1 is never closed with }"),
])
def test_unbalanced_braces_say_where(text, message):
    with pytest.raises(PromptError, match="^" + re.escape(message) + r": permutations are "
                       "written like `a \\{red, green\\} bird`"):
        expand_permutations(text)


def test_at_most_40_prompts_counted_before_expanding():
    assert len(expand_permutations("{a, b} {c, d} {e, f, g, h, i, j, k, l, m, n}")) == 40
    with pytest.raises(PromptError, match=re.escape(
            "The {…} options in this prompt make 1073741824 prompts: one prompt makes at most "
            "40 jobs (as in Midjourney); use fewer options.")):
        expand_permutations("{a, b} " * 30)  # counted, never expanded


def test_repeat_counts_toward_the_40_jobs():
    check_job_count([4] * 10)
    with pytest.raises(PromptError, match=re.escape(
            "11 prompts with their --repeat make 41 jobs: one prompt makes at most 40 jobs")):
        check_job_count([4] * 10 + [1])
    assert MAX_JOBS == 40


@pytest.mark.parametrize(("text", "message"), [
    ("https://cdn.discordapp.com/a.png a {red, green} fox --ar {1:1, 16:9}",
     "With an image prompt every permutation is drawn at one size"),
    ("{https://cdn.discordapp.com/a.png, https://cdn.discordapp.com/b.png} a fox",
     "Permute the words, not the image link"),
])
def test_permutations_share_one_image_prompt_at_one_size(text, message):
    from bot.imagine import _check_one_image_prompt

    with pytest.raises(PromptError, match="^" + re.escape(message)):
        _check_one_image_prompt([parse_prompt(t) for t in expand_permutations(text)])
    _check_one_image_prompt([parse_prompt(t) for t in expand_permutations(
        "https://cdn.discordapp.com/a.png a {red, green} fox")])
