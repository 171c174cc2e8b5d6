"""The preference data as files for training and rating elsewhere. Pure: rows in (read by
the caller, db/exports.py), pyarrow tables and plain rows out; image bytes are passed in.

- Pick-a-Pic v2 pairs: the columns of yuvalkirstain/pickapic_v2, exactly and in order, then
  ours. Image 0 is the comparison's image a, image 1 its image b; label "a" is 1/0, "b" is
  0/1, "tie" and "both_bad" are 0.5/0.5 (our `label` column tells those two apart).
- KTO-style labels for single images: +1 liked, -1 disliked, strong or weak, with the
  conventions of flywheel/pairs.py (IMAGE_LABELS, REROLL_LABEL).
- Arena battles in lm-sys FastChat's format, for pairs of two different model versions.

Privacy: a member is only ever a salted hash (`member_hash`), and Discord mentions and
snowflake-sized numbers are taken out of prompts: no raw Discord id reaches a file.
Splits: a prompt's split is a hash of its normalized text, unsalted, so a prompt keeps its
split from one export to the next and a test prompt never leaks into training.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from flywheel.pairs import IMAGE_LABELS, label_of

PICKAPIC_SCHEMA = pa.schema([
    ("are_different", pa.bool_()),  # the two images' bytes differ (sha256)
    ("best_image_uid", pa.string()),  # the winner's uid; "" for a tie or both bad
    ("caption", pa.string()),  # the prompt
    ("created_at", pa.timestamp("ns")),  # UTC
    ("has_label", pa.bool_()),
    ("image_0_uid", pa.string()),
    ("image_0_url", pa.string()),  # the blob key: our store has no public URL
    ("image_1_uid", pa.string()),
    ("image_1_url", pa.string()),
    ("jpg_0", pa.binary()),  # the image file's bytes as stored (PNG), whatever the name says
    ("jpg_1", pa.binary()),
    ("label_0", pa.float64()),
    ("label_1", pa.float64()),
    ("model_0", pa.string()),  # the model version's name
    ("model_1", pa.string()),
    ("ranking_id", pa.int64()),  # the comparison's id
    ("user_id", pa.int64()),  # member_hash, never the Discord id
    ("num_example_per_prompt", pa.int64()),  # pairs of this prompt in this split
    ("__index_level_0__", pa.int64()),  # the row's index in its split
    # ours, after theirs (the known consumers ignore columns they do not know)
    ("source", pa.string()),  # explicit, implicit_upscale or implicit_variation
    ("label", pa.string()),  # a, b, tie or both_bad
    ("shown_slot_0", pa.int64()),  # where each image was shown (grid slot, or 1/2 in /rate)
    ("shown_slot_1", pa.int64()),
    ("seed_0", pa.int64()),
    ("seed_1", pa.int64()),
    ("steps", pa.int64()),  # null when the two images were drawn with different steps
    ("guidance", pa.float64()),  # likewise
    ("decision_ms", pa.int64()),  # from seeing to deciding; null when unknown
    ("reliability", pa.float64()),  # the member's control accuracy in /rate; null before any
])
KTO_SCHEMA = pa.schema([
    ("prompt", pa.string()),
    ("image", pa.binary()),  # the image file's bytes as stored (PNG)
    ("label", pa.int64()),  # +1 liked, -1 disliked
    ("kind", pa.string()),  # the feedback kind it came from
    ("strength", pa.string()),  # strong or weak
    ("user_id", pa.int64()),  # member_hash
    ("image_uid", pa.string()),
    ("image_url", pa.string()),  # the blob key
    ("decided_at", pa.timestamp("ns")),  # UTC
    ("split", pa.string()),  # the prompt's split, as in the Pick-a-Pic export
])

SPLITS = ("train", "validation", "test", "validation_unique", "test_unique")
# where a prompt's hash (a number in [0, 1)) falls: train 90%, validation 5%, test 5%
SPLIT_BOUNDS = (("train", 0.90), ("validation", 0.95), ("test", 1.0))
LABELS = {"a": (1.0, 0.0), "b": (0.0, 1.0), "tie": (0.5, 0.5), "both_bad": (0.5, 0.5)}
WINNERS = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}
KTO_IMAGE_KINDS = tuple(IMAGE_LABELS)  # a label for the image acted on
KTO_GRID_KINDS = ("reroll",)  # REROLL_LABEL for every image of the grid
# Fixed for good: an image's uid is uuid5(IMAGE_NAMESPACE, its id), the same in every export.
IMAGE_NAMESPACE = uuid.UUID("815a2698-42da-46c4-8ceb-43cd897561cf")

_MENTION = re.compile(r"<@[!&]?\d+>")  # a member or a role
_CHANNEL = re.compile(r"<#\d+>")
_EMOJI = re.compile(r"<a?:(\w+):\d+>")  # a server's emoji: its name stays
_SNOWFLAKE = re.compile(r"(?<!\d)\d{17,20}(?!\d)")  # an id pasted in as a number


@dataclass(frozen=True)
class ExportImage:
    id: int
    blob_key: str
    seed: int
    sha256: str
    model: str  # the model version's name
    steps: int | None  # what its job was drawn with
    guidance: float | None


@dataclass(frozen=True)
class PairRow:
    """One comparison: image a against image b, as a member judged them."""

    id: int
    prompt: str
    label: str  # a, b, tie, both_bad
    source: str
    member_id: int
    shown_slot_a: int
    shown_slot_b: int
    decision_ms: int | None
    created_at: datetime
    reliability: float | None  # the member's control accuracy (None before any control)
    a: ExportImage
    b: ExportImage

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PairRow:
        """From a row whose image columns start with a_ and b_ (db/exports.py)."""
        images = {side: ExportImage(**{f.name: row[f"{side}_{f.name}"]
                                       for f in fields(ExportImage)}) for side in ("a", "b")}
        own = {f.name: row[f.name] for f in fields(cls) if f.name not in images}
        return cls(**own, **images)


@dataclass(frozen=True)
class FeedbackRow:
    """One image a member acted on (a re-roll gives one row per image of its grid)."""

    event_id: int
    kind: str
    member_id: int
    decided_at: datetime
    image_id: int
    blob_key: str
    prompt: str


def member_hash(member_id: int, salt: str) -> int:
    """A member as an anonymous int64: the first 8 bytes of sha256(salt + decimal id), read
    as a signed big-endian number. The same salt gives the same hash in every export."""
    if not salt:
        raise ValueError("salt is '': without a secret salt anyone could recompute the hash")
    digest = hashlib.sha256(f"{salt}{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def image_uid(image_id: int) -> str:
    return str(uuid.uuid5(IMAGE_NAMESPACE, str(image_id)))


def clean_prompt(prompt: str) -> str:
    """The prompt without Discord ids: mentions become @someone or #channel, a server emoji
    its :name:, and a bare snowflake-sized number (17-20 digits) [id]."""
    text = _EMOJI.sub(r":\1:", prompt)
    text = _CHANNEL.sub("#channel", _MENTION.sub("@someone", text))
    return _SNOWFLAKE.sub("[id]", text)


def normalize_prompt(prompt: str) -> str:
    """What makes two prompts the same prompt: case and spacing do not count."""
    return " ".join(clean_prompt(prompt).casefold().split())


def split_of(prompt: str) -> str:
    """train, validation or test, from a hash of the normalized prompt."""
    digest = hashlib.sha256(normalize_prompt(prompt).encode()).digest()
    share = int.from_bytes(digest[:8], "big") / 2**64
    return next(name for name, bound in SPLIT_BOUNDS if share < bound)


# -- Pick-a-Pic v2 ------------------------------------------------------------------------

def pickapic_splits(pairs: Sequence[PairRow]) -> dict[str, list[PairRow]]:
    """All five splits, in SPLITS order, each in comparison order. Every prompt is in one of
    train, validation and test; the unique splits take from validation and test."""
    splits: dict[str, list[PairRow]] = {name: [] for name in SPLITS}
    for pair in sorted(pairs, key=lambda p: p.id):
        splits[split_of(pair.prompt)].append(pair)
    splits["validation_unique"] = unique_per_prompt(splits["validation"])
    splits["test_unique"] = unique_per_prompt(splits["test"])
    return splits


def unique_per_prompt(pairs: Sequence[PairRow]) -> list[PairRow]:
    """One pair per prompt, each prompt's from a member no other prompt's pair is from.
    Greedy and deterministic: prompts in order of their first pair, and for each the first
    pair by a member not yet taken; a prompt whose members are all taken is left out."""
    taken: set[int] = set()
    chosen = []
    for group in _by_prompt(pairs).values():
        pick = next((pair for pair in group if pair.member_id not in taken), None)
        if pick is not None:
            taken.add(pick.member_id)
            chosen.append(pick)
    return chosen


def _by_prompt(pairs: Sequence[PairRow]) -> dict[str, list[PairRow]]:
    groups: dict[str, list[PairRow]] = {}
    for pair in pairs:
        groups.setdefault(normalize_prompt(pair.prompt), []).append(pair)
    return groups


def pickapic_rows(pairs: Sequence[PairRow], salt: str) -> list[dict]:
    """One split's rows in PICKAPIC_SCHEMA, without the images (pickapic_table adds them;
    image_N_url names the blob to read)."""
    counts = Counter(normalize_prompt(pair.prompt) for pair in pairs)
    return [_pickapic_row(pair, salt, index, counts[normalize_prompt(pair.prompt)])
            for index, pair in enumerate(pairs)]


def _pickapic_row(pair: PairRow, salt: str, index: int, count: int) -> dict:
    label_0, label_1 = pair_labels(pair.label)
    winner = {"a": pair.a, "b": pair.b}.get(pair.label)
    return {
        "are_different": pair.a.sha256 != pair.b.sha256,
        "best_image_uid": image_uid(winner.id) if winner else "",
        "caption": clean_prompt(pair.prompt), "created_at": _naive_utc(pair.created_at),
        "has_label": True,
        "image_0_uid": image_uid(pair.a.id), "image_0_url": pair.a.blob_key,
        "image_1_uid": image_uid(pair.b.id), "image_1_url": pair.b.blob_key,
        "jpg_0": None, "jpg_1": None, "label_0": label_0, "label_1": label_1,
        "model_0": pair.a.model, "model_1": pair.b.model, "ranking_id": pair.id,
        "user_id": member_hash(pair.member_id, salt), "num_example_per_prompt": count,
        "__index_level_0__": index,
        "source": pair.source, "label": pair.label,
        "shown_slot_0": pair.shown_slot_a, "shown_slot_1": pair.shown_slot_b,
        "seed_0": pair.a.seed, "seed_1": pair.b.seed,
        "steps": _shared(pair.a.steps, pair.b.steps),
        "guidance": _shared(pair.a.guidance, pair.b.guidance),
        "decision_ms": pair.decision_ms, "reliability": pair.reliability,
    }


def pair_labels(label: str) -> tuple[float, float]:
    """(label_0, label_1) of a comparison label."""
    if label not in LABELS:
        raise ValueError(f"label is {label!r}: allowed: {', '.join(LABELS)}")
    return LABELS[label]


def pickapic_table(rows: Sequence[dict], images: Sequence[tuple[bytes, bytes]]) -> pa.Table:
    """Rows of pickapic_rows as a table, images[i] being (jpg_0, jpg_1) of rows[i]."""
    _same_length(rows, images)
    return pa.Table.from_pylist([row | {"jpg_0": jpg_0, "jpg_1": jpg_1}
                                 for row, (jpg_0, jpg_1) in zip(rows, images, strict=True)],
                                schema=PICKAPIC_SCHEMA)


def dataset_card(splits: Sequence[str] = SPLITS) -> str:
    """A README.md for the export folder that names its splits (those written: the
    non-empty ones), so the `datasets` library loads each file as its own split (by file
    name alone it would fold validation_unique into validation and test_unique into test)."""
    files = "".join(f"  - split: {name}\n    path: {name}.parquet\n" for name in splits)
    return (f"---\nconfigs:\n- config_name: default\n  data_files:\n{files}---\n\n"
            "# dreamloop preference pairs\n\nPick-a-Pic v2 columns, in order, then dreamloop's "
            "own. Member ids are salted hashes. Written by `dreamloop export`.\n")


# -- KTO ------------------------------------------------------------------------------------

def kto_label(kind: str) -> tuple[int, str]:
    """(+1 or -1, strong or weak) for a feedback kind (flywheel/pairs.py's label_of)."""
    found = label_of(kind)
    if found is None:
        raise ValueError(f"kind is {kind!r}: it labels no image; allowed: "
                         f"{', '.join(KTO_IMAGE_KINDS + KTO_GRID_KINDS)}")
    return found


def kto_rows(feedback: Sequence[FeedbackRow], salt: str) -> list[dict]:
    """Rows in KTO_SCHEMA without the images (kto_table adds them; image_url names the
    blob to read)."""
    rows = []
    for item in feedback:
        label, strength = kto_label(item.kind)
        rows.append({
            "prompt": clean_prompt(item.prompt), "image": None, "label": label,
            "kind": item.kind, "strength": strength,
            "user_id": member_hash(item.member_id, salt), "image_uid": image_uid(item.image_id),
            "image_url": item.blob_key, "decided_at": _naive_utc(item.decided_at),
            "split": split_of(item.prompt)})
    return rows


def kto_table(rows: Sequence[dict], images: Sequence[bytes]) -> pa.Table:
    """Rows of kto_rows as a table, images[i] being the image of rows[i]."""
    _same_length(rows, images)
    return pa.Table.from_pylist(
        [row | {"image": image} for row, image in zip(rows, images, strict=True)],
        schema=KTO_SCHEMA)


# -- arena battles --------------------------------------------------------------------------

def battle_rows(pairs: Sequence[PairRow], salt: str) -> list[dict]:
    """Battles as FastChat's elo_analysis.py reads them (a JSON list of these), for pairs of
    two different model versions only, in comparison order. `anony` is true: members are
    never shown which version drew an image."""
    return [{"model_a": pair.a.model, "model_b": pair.b.model, "winner": WINNERS[pair.label],
             "judge": str(member_hash(pair.member_id, salt)),
             "tstamp": pair.created_at.timestamp(), "prompt": clean_prompt(pair.prompt),
             "anony": True, "source": pair.source, "ranking_id": pair.id}
            for pair in sorted(pairs, key=lambda p: p.id) if pair.a.model != pair.b.model]


# -- helpers --------------------------------------------------------------------------------

def _naive_utc(when: datetime) -> datetime:
    """timestamp[ns] has no zone: UTC, said once here."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _shared(first, second):
    return first if first == second else None


def _same_length(rows: Sequence, images: Sequence) -> None:
    if len(images) != len(rows):
        raise ValueError(f"images has {len(images)} items: one per row is needed "
                         f"({len(rows)} rows)")
