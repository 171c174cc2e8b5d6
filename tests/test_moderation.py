"""Banned words: how prompts are read (normalise) and matched (bot/moderation.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.moderation import (
    DEFAULT_RULES,
    MAX_PATTERN,
    PatternError,
    Rule,
    RuleSet,
    check_name,
    check_pattern,
    load_default_rules,
    normalise,
    normalise_pattern,
)

EXPLICIT = "explicit sexual content (dreamloop's default list)"


@pytest.mark.parametrize(("text", "read"), [
    ("A Red  FOX!", "a red fox"),
    ("NÜDE café", "nude cafe"),  # accents
    ("nu\u200bde nu\u200dde nu\ufeffde nu\u00adde", "nude nude nude nude"),  # invisible
    ("nudе", "nude"),  # Cyrillic е
    ("ΝΟΤ ηοτ", "not not"),  # Greek capitals and their look-alike small letters
    ("ｎｕｄｅ 𝐧𝐮𝐝𝐞 ⓝⓤⓓⓔ", "nude nude nude"),  # fullwidth, bold, circled: NFKC
    ("n4k3d b00bs $ex @ss", "naked boobs sex ass"),  # leetspeak in words with a letter
    ("a 455 engine, 1080p in 3d", "a 455 engine 1o8op in ed"),  # numbers alone stay
    ("n.u.d.e then n u d e s", "nude then nudes"),  # spaced letters
    ("a b, cat", "a b cat"),  # two one-letter words stay two words
    ("a n u d e", "anude"),
    ("", ""),
])
def test_normalise_reads_past_spelling_tricks(text, read):
    assert normalise(text) == read


@pytest.mark.parametrize("prompt", [
    "a NUDE statue", "a nüde statue", "a nu\u200bde statue", "a nudе statue",
    "a n4k3d statue", "a n.u.d.e statue", "a n u d e statue", "ｎｕｄｅ", "a Ν U D Ε statue",
    "pornography", "porn-star", "an orgy of colour", "s3x",
])
def test_evasions_of_the_default_list_are_caught(prompt):
    assert DEFAULT_RULES.first_match(prompt).label == EXPLICIT


@pytest.mark.parametrize("prompt", [
    "a classic Scunthorpe skyline", "an assassin in Essex", "a sextant on a ship's deck",
    "a lollipop and a pedometer", "Al Gore in a gore-tex jacket", "a bass guitar",
    "a cocktail at Sussex", "a therapist's office", "a 455 engine in 4k", "grapes, 3d render",
    "analysis of a nuder painting", "shiitake mushrooms", "a title page",
])
def test_innocent_prompts_with_banned_words_inside_other_words_pass(prompt):
    assert DEFAULT_RULES.first_match(prompt) is None


def test_each_named_rule_of_the_default_list_catches_its_words():
    cases = {"child porn": "sexual content involving minors",
             "childp0rn": "sexual content involving minors",
             "graphic decapitation": "graphic violence",
             "a n1gg3r": "hate speech", "s1eg he1l": "hate speech"}
    for prompt, name in cases.items():
        assert DEFAULT_RULES.first_match(prompt).label == f"{name} (dreamloop's default list)"


def rules(*patterns: str) -> RuleSet:
    return RuleSet(Rule(check_pattern(p), f"rule {p}") for p in patterns)


def test_wildcards_and_phrases():
    banned = rules("nud*", "sp*der", "red fox")
    assert banned.first_match("two nudes").pattern == "nud*"
    assert banned.first_match("a nude").pattern == "nud*"
    assert banned.first_match("a nunnery") is None
    assert banned.first_match("a spyder and a spider").pattern == "sp*der"
    assert banned.first_match("a spiders web") is None  # * stays inside the word
    assert banned.first_match("a red fox").pattern == "red fox"
    assert banned.first_match("a redfox").pattern == "red fox"  # the phrase as one word
    assert banned.first_match("a red big fox") is None
    assert banned.first_match("a reddish fox") is None


def test_one_matches_i_and_l_and_entries_are_read_like_prompts():
    banned = rules("slime", "Kill")
    assert banned.first_match("a s1ime monster").pattern == "slime"
    assert banned.first_match("k1ll it").pattern == "Kill"
    assert rules("Nüd*").first_match("NUDES") is not None
    assert normalise_pattern("Nüd*  P1CS") == "nud* p1cs"


@pytest.mark.parametrize(("entry", "message"), [
    ("", "Give a word or phrase to ban"),
    ("x" * (MAX_PATTERN + 1), f"at most {MAX_PATTERN} are allowed"),
    ("nud[e]", "`[` (U+005B) cannot be in an entry: use letters, digits, spaces, hyphens"),
    ("(a+)+$", "`(` (U+0028) cannot be in an entry"),
    ("nu\u200bde", "U+200B cannot be in an entry"),
    ("*", "A * must touch a word's letters"),
    ("red *", "A * must touch a word's letters"),
    ("-'", "has no letters or digits"),
])
def test_bad_entries_are_refused_saying_what_is_allowed(entry, message):
    with pytest.raises(PatternError, match=re.escape(message)):
        check_pattern(entry)


def test_entries_and_names_are_tidied():
    assert check_pattern("  red   fox ") == "red fox"
    assert check_name("  ") is None
    assert check_name(" no  spiders ") == "no spiders"
    with pytest.raises(PatternError, match=re.escape("U+0000")):
        check_name("a\x00b")


def test_the_default_list_loads_every_entry_checked():
    listed = load_default_rules()
    assert {rule.label for rule in listed.rules} == {
        f"{name} (dreamloop's default list)" for name in (
            "sexual content involving minors", "explicit sexual content", "graphic violence",
            "hate speech")}


# A guard against catastrophic backtracking, not a timing: without atomic groups these take
# hours (every split of a 6,000-letter word for each *); with them, milliseconds.
@pytest.mark.timeout(60, method="thread")
def test_a_long_hostile_prompt_cannot_make_matching_backtrack():
    many = RuleSet(Rule(check_pattern(f"a*b*c*d*e{i}"), "r") for i in range(200))
    assert many.first_match("a" * 6000 + " " + "abcd" * 1500) is None
    assert many.first_match("a b c d " * 750) is None  # spelled out: matched anywhere inside
    assert DEFAULT_RULES.first_match("nudx " * 1200) is None


# -- properties ---------------------------------------------------------------------------

@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec=None)))
def test_normalise_never_raises_and_is_idempotent(text):
    once = normalise(text)
    assert normalise(once) == once
    DEFAULT_RULES.first_match(text)  # nor does matching


def test_normalise_is_idempotent_on_every_code_point():
    for start in range(0, 0x110000, 128):
        text = "".join(f"x{chr(code)}y " for code in range(start, start + 128))
        once = normalise(text)
        assert normalise(once) == once, hex(start)


INNOCENT = ["a", "red", "fox", "classic", "scunthorpe", "assassin", "essex", "sextant",
            "bass", "grass", "cocktail", "therapist", "pedometer", "lollipop", "analysis",
            "document", "skyline", "snow", "glass", "passage", "hello", "shiitake", "sussex",
            "night", "pianist", "ukulele", "castle", "4k", "3d", "1080p", "35mm", "f1.4"]
SEPARATORS = st.sampled_from([" ", "  ", ", ", "-", ".", "\n", " — ", "::2 ", "\u200b "])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(INNOCENT), SEPARATORS), max_size=30),
       st.booleans())
def test_innocent_text_made_of_allowed_words_never_matches(words, shout):
    text = "".join(word + separator for word, separator in words)
    assert DEFAULT_RULES.first_match(text.upper() if shout else text) is None
