"""Banned words and patterns: how a prompt is read before it is matched, and the matching.

Pure Python (no discord import): bot/rule_check.py applies it to /imagine and the buttons,
bot/rules.py lets a server's admins edit its rules.

How text is read (normalise), so that spelling tricks do not slip past a rule:
  1. Unicode NFKC (fullwidth ｎｕｄｅ, 𝐧𝐮𝐝𝐞, ⓝ and ligatures become plain letters);
  2. look-alike letters become the Latin letter they imitate (Cyrillic а е о р с х у і ѕ …,
     Greek α ε ο ν ρ τ …; upper and lower case each to the letter it looks like);
  3. casefold, then accents dropped (NFD, combining marks removed: nüde → nude);
  4. invisible characters dropped (Unicode category Cf: zero-width space and joiner, U+FEFF,
     the soft hyphen…; and the Hangul fillers, letters that draw nothing);
  5. words are runs of letters and digits (and @ $); everything else separates them;
  6. three or more one-character words in a row are one word: "n u d e", "n.u.d.e" → nude
     (and an entry matches anywhere inside such a word: "a n u d e" reads "anude");
  7. leetspeak, in words that hold a letter: 0→o 3→e 4→a 5→s 7→t @→a $→s. A 1 stays 1,
     and matches i, l or 1 alike. Numbers alone are left as they are ("455" is not "ass").
  Steps 1 to 4 repeat until nothing changes, so reading the result again changes nothing.

The matching rule: an entry matches whole words of the normalised prompt, never part of a
word, so "classic" and "Scunthorpe" pass when "ass" and "cunt" are banned. A `*` in an entry
stands for any run of letters within one word (`nud*` matches nude, nudes, nudity); an entry
of several words matches those words in a row, and also written as one word ("child porn"
matches "childporn"). Entries are read the same way as prompts. Members never give regular
expressions: an entry is letters, digits, spaces, hyphens, apostrophes and `*`, translated
here into a regex that cannot backtrack badly (atomic groups, as fnmatch does), so no entry
can make matching slow (ReDoS).
"""

from __future__ import annotations

import itertools
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAX_PATTERN = 60  # characters in one entry
MAX_NAME = 60  # characters in a rule's name
MAX_RULES = 200  # entries per server
DEFAULT_LIST = Path(__file__).with_name("default_rules.toml")
DEFAULT_SOURCE = "dreamloop's default list"

# Step 2: look-alikes, by case (before casefold, so Greek Η (eta) reads H and η reads n).
_LOOKALIKES = str.maketrans({
    # Cyrillic
    "а": "a", "в": "b", "г": "r", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "п": "n", "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "ь": "b", "һ": "h",
    "і": "i", "ј": "j", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y",
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ү": "Y",
    "Ӏ": "I", "Ԛ": "Q", "Ԝ": "W",
    # Greek
    "α": "a", "β": "b", "γ": "y", "ε": "e", "η": "n", "ι": "i", "κ": "k", "μ": "u",
    "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M",
    "Ν": "N", "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Latin and Armenian look-alikes NFKC keeps
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "օ": "o", "ս": "u", "ո": "n", "հ": "h",
})
_HANGUL_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
_DROPPED = frozenset(("Cf", "Mn", "Me"))  # format characters, combining and enclosing marks
_LEET = str.maketrans("03457@$", "oeastas")
_WORD = re.compile(r"(?:[^\W_]|[@$])+")  # letters and digits (any script), @ and $
_PASSES = 4
# Step 7's 1, and the letters it may stand for: in an entry, each matches them all.
_ONE_LIKE = {"i": "[i1]", "l": "[l1]", "1": "[il1]"}
_ENTRY_CHARACTERS = " -'*"
_WINDOW, _WINDOW_OVERLAP = 200, 2 * MAX_PATTERN  # letters; an entry is at most 60 long


class PatternError(ValueError):
    """An entry or a rule name cannot be used as given; the message says what is allowed."""


def normalise(text: str) -> str:
    """text as the rules read it: its words, normalised (see the module's docstring),
    separated by single spaces."""
    return read(text)[0]


def read(text: str) -> tuple[str, list[str]]:
    """The normalised text, and the words in it that were spelled out one character at a
    time ("n u d e" → "nude"). A spelled-out word has no boundaries to go by ("a n u d e"
    reads "anude"), so RuleSet looks for entries anywhere inside those."""
    words = _WORD.findall(_fold(text))
    joined, spelled = [], []
    for single, run in itertools.groupby(words, key=lambda word: len(word) == 1):
        run = list(run)
        if single and len(run) >= 3:
            spelled.append(_leet("".join(run)))
            joined.append(spelled[-1])
        else:
            joined += [_leet(word) for word in run]
    return " ".join(joined), spelled


def _fold(text: str) -> str:
    """Steps 1 to 4, repeated until nothing changes (casefold and NFKC may each undo the
    other's work once)."""
    for _ in range(_PASSES):
        folded = unicodedata.normalize("NFKC", text).translate(_LOOKALIKES).casefold()
        folded = "".join(c for c in unicodedata.normalize("NFD", folded) if
                         unicodedata.category(c) not in _DROPPED and c not in _HANGUL_FILLERS)
        if folded == text:
            break
        text = folded
    return text


def _leet(word: str) -> str:
    return word.translate(_LEET) if any(c.isalpha() for c in word) else word


# -- entries ------------------------------------------------------------------------------

def check_pattern(text: str) -> str:
    """An entry as it is stored (spaces tidied), or PatternError saying what is allowed."""
    pattern = " ".join(text.split())
    allowed = ("use letters, digits, spaces, hyphens and apostrophes, with * standing for "
               "any letters within a word (like `nud*`)")
    if not pattern:
        raise PatternError(f"Give a word or phrase to ban: {allowed}.")
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"The entry is {len(pattern)} characters long; at most "
                           f"{MAX_PATTERN} are allowed.")
    bad = next((c for c in pattern if not (c.isalnum() or c in _ENTRY_CHARACTERS)), None)
    if bad is not None:
        raise PatternError(f"{_shown(bad)} cannot be in an entry: {allowed}.")
    if re.search(r"(?<![^\W_])\*(?![^\W_])", pattern):
        raise PatternError("A * must touch a word's letters (like `nud*` or `n*de`): "
                           "on its own it would stand for every word.")
    if not normalise(pattern.replace("*", " ")):
        raise PatternError(f"The entry has no letters or digits to match: {allowed}.")
    return pattern


def check_name(text: str | None) -> str | None:
    """A rule's name as stored (None: unnamed), or PatternError. Members see it when the rule
    refuses their prompt, so it should say what the rule is about, not the word."""
    if text is None or not text.strip():
        return None
    name = " ".join(text.split())
    if len(name) > MAX_NAME:
        raise PatternError(f"The rule's name is {len(name)} characters long; at most "
                           f"{MAX_NAME} are allowed.")
    bad = next((c for c in name if not c.isprintable()), None)
    if bad is not None:
        raise PatternError(f"{_shown(bad)} cannot be in a rule's name: use printable "
                           "characters.")
    return name


def _shown(character: str) -> str:
    if character.isprintable() and not character.isspace():
        return f"`{character}` (U+{ord(character):04X})"
    return f"U+{ord(character):04X}"


def normalise_pattern(pattern: str) -> str:
    """A checked entry read as prompts are, its `*`s kept: "Nüd*  P1CS" → "nud* p1cs"."""
    pieces = re.sub(r"\*+", "*", pattern).split("*")
    return "*".join(_piece(piece) for piece in pieces)


def _piece(piece: str) -> str:
    words = normalise(piece)
    if not words:
        return " " if piece.strip(_ENTRY_CHARACTERS) != piece else ""
    before = " " if piece[0] in _ENTRY_CHARACTERS else ""
    after = " " if piece[-1] in _ENTRY_CHARACTERS else ""
    return before + words + after


def pattern_regex(pattern: str) -> str:
    """The regex, over normalised text, of a checked entry (and of its words as one)."""
    words = re.sub(" +", " ", normalise_pattern(pattern)).strip()
    return "|".join(_translate(variant)
                    for variant in dict.fromkeys((words, words.replace(" ", ""))))


def _translate(words: str) -> str:
    # fnmatch's translation, within one word ([^ ] for .): every * but the last is atomic,
    # taking the shortest run, so a failed match never tries every split of a long word.
    pieces = [_literal(piece) for piece in words.split("*")]
    if len(pieces) == 1:
        return pieces[0]
    middle = "".join(f"(?>[^ ]*?{piece})" for piece in pieces[1:-1])
    return f"{pieces[0]}{middle}[^ ]*{pieces[-1]}"


def _literal(piece: str) -> str:
    return "".join(_ONE_LIKE.get(c) or re.escape(c) for c in piece)


# -- rule sets ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One entry and the rule it belongs to: label is what a refusal names (the rule's name
    and where it comes from), never the entry itself."""

    pattern: str
    label: str
    rule_id: int | None = None  # a server's rule: its id in moderation_rules


class RuleSet:
    """Entries compiled into one regex; first_match says which rule a text breaks."""

    def __init__(self, rules: Iterable[Rule]):
        self.rules = tuple(rules)
        groups = "|".join(f"(?P<r{index}>{pattern_regex(rule.pattern)})"
                          for index, rule in enumerate(self.rules))
        # Whole words of the text; anywhere within a word spelled out letter by letter.
        self._words = re.compile(rf"(?<![^ ])(?:{groups})(?![^ ])") if groups else None
        self._spelled = re.compile(groups) if groups else None

    def first_match(self, text: str) -> Rule | None:
        """The rule of the first entry text breaks, or None."""
        if self._words is None:
            return None
        words, spelled = read(text)
        found = self._words.search(words) or next(
            (hit for window in _windows(spelled) if (hit := self._spelled.search(window))),
            None)
        return self.rules[int(found.lastgroup[1:])] if found else None


def _windows(spelled: list[str]) -> Iterable[str]:
    """Spelled-out words in overlapping windows: a search anywhere inside a word costs its
    length squared per entry with a `*`, and a hostile prompt spells out 3,000 letters."""
    for word in spelled:
        for start in range(0, max(len(word) - _WINDOW_OVERLAP, 1), _WINDOW - _WINDOW_OVERLAP):
            yield word[start:start + _WINDOW]


def load_default_rules(path: Path = DEFAULT_LIST) -> RuleSet:
    """dreamloop's default list: named rules, each a list of entries (bot/default_rules.toml)."""
    with path.open("rb") as file:
        listed = tomllib.load(file)["rule"]
    return RuleSet(Rule(check_pattern(entry), f"{rule['name']} ({DEFAULT_SOURCE})")
                   for rule in listed for entry in rule["entries"])


DEFAULT_RULES = load_default_rules()
