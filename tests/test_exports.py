"""`dreamloop export` against a seeded schema and real PNG blobs: Pick-a-Pic v2 parquet with
the exact columns, KTO labels, arena battles, and no raw Discord id in any file."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest
from PIL import Image

from db.connection import with_schema
from db.feedback import Comparison, FeedbackEvent, record_comparison, record_feedback
from db.images import job_images
from db.jobs import complete_job, create_job
from db.model_versions import ensure_model_version
from flywheel.exports import clean_prompt, split_of
from generation.blobs import LocalBlobStore
from tests.factories import imagine_request, result_for
from tests.test_cli import dreamloop

SALT = "a-test-salt-0123456789abcdef"
# snowflake-sized ids, so that finding one in a file cannot be a coincidence
MEMBERS = [812345678901234567 + 7_654_321_987 * n for n in range(6)]
SPLIT_FILES = ("train", "validation", "test", "validation_unique", "test_unique")
# Pick-a-Pic v2's own columns, in order (REFERENCE.md §4)
PICKAPIC_V2 = [
    ("are_different", "bool"), ("best_image_uid", "string"), ("caption", "string"),
    ("created_at", "timestamp[ns]"), ("has_label", "bool"), ("image_0_uid", "string"),
    ("image_0_url", "string"), ("image_1_uid", "string"), ("image_1_url", "string"),
    ("jpg_0", "binary"), ("jpg_1", "binary"), ("label_0", "double"), ("label_1", "double"),
    ("model_0", "string"), ("model_1", "string"), ("ranking_id", "int64"),
    ("user_id", "int64"), ("num_example_per_prompt", "int64"),
    ("__index_level_0__", "int64")]
VOTE_LABELS = ("a", "b", "tie", "both_bad")
WINNER = {"a": "model_a", "b": "model_b", "tie": "tie", "both_bad": "tie (bothbad)"}


@dataclass
class Seeded:
    prompts: dict[str, list[str]]  # split → prompts voted on
    votes: list[tuple[str, str, str, int]] = field(default_factory=list)  # prompt, a, b, member
    labels: list[str] = field(default_factory=list)  # of the votes, in order
    keys: list[str] = field(default_factory=list)  # blob key of each vote's image a
    same_bytes_pair: tuple[int, int] | None = None


def prompts_by_split(per_split: int) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for n in itertools.count():
        prompt = f"a lighthouse at dusk, study {n}"
        if len(found[split_of(prompt)]) < per_split:
            found[split_of(prompt)].append(prompt)
        if all(len(p) == per_split for p in found.values()):
            return found
    raise AssertionError("unreachable")


def png(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (seed % 256, (seed * 7) % 256, 90)).save(buffer, "PNG")
    return buffer.getvalue()


async def grid(conn, store: LocalBlobStore, version: str, prompt: str, member: int) -> list:
    made = await ensure_model_version(conn, version, "tiny-random", "builtin")
    request = imagine_request(seed=len(prompt), prompt=prompt, user_id=member)
    job, _ = await create_job(conn, request, model_version_id=made.id)
    await complete_job(conn, result_for(job.id, request))
    images = await job_images(conn, job.id)
    for image in images:
        store.put(image.blob_key, png(image.id), "image/png")
    return images


async def vote(conn, seeded: Seeded, prompt: str, a, b, member: int) -> None:
    label = VOTE_LABELS[len(seeded.votes) % len(VOTE_LABELS)]
    await record_comparison(conn, Comparison(a.id, b.id, prompt, label, "explicit", member,
                                             1, 2, decision_ms=900))
    seeded.votes.append((prompt, "base", "dpo-1", member))
    seeded.labels.append(label)
    seeded.keys.append(a.blob_key)


async def pick(conn, kind: str, source: str, images, slot: int, member: int,
               prompt: str) -> None:
    """A U or V pick and the three pairs it implies (the picked image is a)."""
    event_id, _ = await record_feedback(conn, FeedbackEvent(
        member_id=member, kind=kind, shown_at=datetime.now(UTC), job_id=images[0].job_id,
        image_id=images[slot - 1].id, shown_slot=slot))
    for other in images:
        if other.slot != slot:
            await record_comparison(conn, Comparison(
                images[slot - 1].id, other.id, prompt, "a", source,
                member, slot, other.slot, decision_ms=1500, feedback_event_id=event_id))


async def feedback(conn, kind: str, images, slot: int | None, member: int) -> None:
    image = images[slot - 1] if slot else None
    await record_feedback(conn, FeedbackEvent(
        member_id=member, kind=kind, shown_at=datetime.now(UTC), job_id=images[0].job_id,
        image_id=image.id if image else None, shown_slot=slot))


@pytest.fixture
async def seeded(db, tmp_path) -> Seeded:
    """Cross-version votes on prompts of every split (several members on validation and
    test prompts), a U pick and a V pick, single-image feedback and a re-roll."""
    store = LocalBlobStore(tmp_path / "blobs")
    seeded = Seeded(prompts_by_split(3))
    async with db.acquire() as conn:
        await conn.execute("INSERT INTO members (id) SELECT unnest($1::bigint[])", MEMBERS)
        for split, prompts in seeded.prompts.items():
            voters = MEMBERS[:1] if split == "train" else MEMBERS[:3]
            for number, prompt in enumerate(prompts):
                base = await grid(conn, store, "base", prompt, MEMBERS[5])
                dpo = await grid(conn, store, "dpo-1", prompt, MEMBERS[5])
                for member in voters[:number + 1]:  # prompt 1: one voter, prompt 3: three
                    await vote(conn, seeded, prompt, base[number], dpo[number], member)
        await seed_picks_and_feedback(conn, store, seeded)
    return seeded


async def seed_picks_and_feedback(conn, store: LocalBlobStore, seeded: Seeded) -> None:
    prompt = seeded.prompts["train"][0]
    images = await grid(conn, store, "base", prompt, MEMBERS[4])
    await pick(conn, "upscale_pick", "implicit_upscale", images, 2, MEMBERS[4], prompt)
    await pick(conn, "variation_pick", "implicit_variation", images, 3, MEMBERS[3], prompt)
    for kind, slot in (("thumbs_up", 1), ("thumbs_down", 4), ("favourite", 2),
                       ("vary_subtle", 2)):
        await feedback(conn, kind, images, slot, MEMBERS[3])
    rerolled = await grid(conn, store, "dpo-1", prompt, MEMBERS[4])
    await feedback(conn, "reroll", rerolled, None, MEMBERS[2])
    # one more vote, on a prompt that mentions a member, between two identical images
    mention = next(f"a portrait of <@{MEMBERS[1]}> as knight {n}" for n in itertools.count()
                   if split_of(f"a portrait of @someone as knight {n}") == "train")
    base = await grid(conn, store, "base", mention, MEMBERS[1])
    dpo = await grid(conn, store, "dpo-1", mention, MEMBERS[1])
    await conn.execute("UPDATE images SET sha256 = $1 WHERE id = $2",
                       hashlib.sha256(b"same").hexdigest(), base[0].id)
    await conn.execute("UPDATE images SET sha256 = $1 WHERE id = $2",
                       hashlib.sha256(b"same").hexdigest(), dpo[0].id)
    seeded.same_bytes_pair = (base[0].id, dpo[0].id)
    await vote(conn, seeded, mention, base[0], dpo[0], MEMBERS[4])


@pytest.fixture
def env(cli_env, database_url, db_schema, tmp_path) -> dict[str, str]:
    return cli_env | {"DREAMLOOP_DATABASE_URL": with_schema(database_url, db_schema),
                      "DREAMLOOP_EXPORT_SALT": SALT,
                      "DREAMLOOP_BLOB_URL": str(tmp_path / "blobs")}


def export(env: dict[str, str], out, *args: str):
    result = dreamloop("export", "--out", str(out), *args, env=env)
    assert result.returncode == 0, result.stderr
    return result


def member_hash(member: int) -> int:
    digest = hashlib.sha256(f"{SALT}{member}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def read_splits(out) -> dict[str, list[dict]]:
    return {name: pq.read_table(out / f"{name}.parquet").to_pylist() for name in SPLIT_FILES}


def assert_no_discord_ids(out) -> None:
    """Neither as text nor as a raw 64-bit integer, in any file; no temporary file left."""
    files = [path for path in out.rglob("*") if path.is_file()]
    assert files and not [path for path in files if path.name.endswith(".tmp")]
    for path in files:
        data = path.read_bytes()
        for member in MEMBERS:
            assert str(member).encode() not in data, (path, member)
            assert member.to_bytes(8, "little") not in data, (path, member)
            assert member.to_bytes(8, "big") not in data, (path, member)


async def test_pickapic_export_has_pick_a_pic_columns_labels_and_images(seeded, env, tmp_path):
    out = tmp_path / "pickapic"
    result = export(env, out, "--format", "pickapic")
    for name in SPLIT_FILES:
        schema = pq.read_schema(out / f"{name}.parquet")
        assert [(f.name, str(f.type)) for f in schema][:19] == PICKAPIC_V2, name
        assert f"wrote {out / name}.parquet:" in result.stdout
    splits = read_splits(out)
    rows = [row for name in ("train", "validation", "test") for row in splits[name]]
    assert len(rows) == len(seeded.votes) + 3  # the U pick's three pairs; V picks stay out
    assert {row["source"] for row in rows} == {"explicit", "implicit_upscale"}
    for row in rows:
        assert_labelled(row)
        for n in (0, 1):
            assert Image.open(io.BytesIO(row[f"jpg_{n}"])).size == (8, 8)
    assert sorted(row["label"] for row in rows if row["source"] == "explicit") == sorted(
        seeded.labels)
    assert [r["are_different"] for r in rows if "as knight" in r["caption"]] == [False]
    assert sum(not row["are_different"] for row in rows) == 1
    assert_no_discord_ids(out)


def assert_labelled(row: dict) -> None:
    labels = (row["label_0"], row["label_1"])
    assert labels in [(1.0, 0.0), (0.0, 1.0), (0.5, 0.5)]
    assert row["has_label"] is True
    best = {(1.0, 0.0): row["image_0_uid"], (0.0, 1.0): row["image_1_uid"]}.get(labels, "")
    assert row["best_image_uid"] == best
    assert labels == {"a": (1, 0), "b": (0, 1), "tie": (.5, .5), "both_bad": (.5, .5)}[
        row["label"]]
    assert row["user_id"] in {member_hash(member) for member in MEMBERS}


async def test_prompts_keep_to_one_split_and_unique_splits_have_one_pair_each(seeded, env,
                                                                               tmp_path):
    out = tmp_path / "pickapic"
    export(env, out, "--format", "pickapic")
    splits = read_splits(out)
    captions = {name: {row["caption"] for row in rows} for name, rows in splits.items()}
    for first, second in itertools.combinations(("train", "validation", "test"), 2):
        assert not captions[first] & captions[second], (first, second)
    for name in ("validation", "test"):
        assert captions[name] == set(seeded.prompts[name])
        unique = splits[f"{name}_unique"]
        assert 0 < len(unique) <= len(seeded.prompts[name])
        assert len({row["caption"] for row in unique}) == len(unique)  # one pair per prompt
        assert len({row["user_id"] for row in unique}) == len(unique)  # distinct members
        assert {row["ranking_id"] for row in unique} <= {r["ranking_id"] for r in splits[name]}
    for name, rows in splits.items():
        assert [row["__index_level_0__"] for row in rows] == list(range(len(rows)))
        for row in rows:
            same = sum(r["caption"] == row["caption"] for r in rows)
            assert row["num_example_per_prompt"] == same, name
    knights = [c for c in captions["train"] if c.startswith("a portrait of @someone as knight")]
    assert len(knights) == 1


async def test_variation_pairs_only_when_asked(seeded, env, tmp_path):
    out = tmp_path / "all"
    export(env, out, "--format", "pickapic", "--sources",
           "explicit,implicit_upscale,implicit_variation")
    rows = [row for rows in read_splits(out).values() for row in rows]
    assert sum(row["source"] == "implicit_variation" for row in rows) == 3
    assert_no_discord_ids(out)


async def test_kto_labels_per_image(seeded, env, tmp_path):
    out = tmp_path / "kto"
    export(env, out, "--format", "kto")
    rows = pq.read_table(out / "kto.parquet").to_pylist()
    labels = sorted((row["kind"], row["label"], row["strength"]) for row in rows)
    assert labels == sorted([
        ("upscale_pick", 1, "strong"), ("variation_pick", 1, "weak"),
        ("thumbs_up", 1, "strong"), ("thumbs_down", -1, "strong"),
        ("favourite", 1, "strong"), ("vary_subtle", 1, "weak")] + [("reroll", -1, "weak")] * 4)
    assert len({row["image_uid"] for row in rows if row["kind"] == "reroll"}) == 4
    for row in rows:
        assert Image.open(io.BytesIO(row["image"])).size == (8, 8)
        assert row["prompt"] == seeded.prompts["train"][0]
        assert row["user_id"] in {member_hash(member) for member in MEMBERS}
    assert_no_discord_ids(out)


async def test_battles_are_cross_version_votes_in_fastchat_form(seeded, env, db, tmp_path):
    out = tmp_path / "battles"
    export(env, out, "--format", "battles")
    battles = json.loads((out / "battles.json").read_text())
    assert [(b["prompt"], b["model_a"], b["model_b"]) for b in battles] == [
        (prompt.replace(f"<@{MEMBERS[1]}>", "@someone"), a, b)
        for prompt, a, b, _ in seeded.votes]
    assert [b["winner"] for b in battles] == [WINNER[label] for label in seeded.labels]
    assert [b["judge"] for b in battles] == [str(member_hash(m)) for *_, m in seeded.votes]
    assert all(isinstance(b["tstamp"], float) and b["anony"] is True for b in battles)
    assert_no_discord_ids(out)

    async with db.acquire() as conn:  # the first vote long ago: --since leaves it out
        await conn.execute("UPDATE comparisons SET created_at = '2020-01-01' WHERE id = "
                           "(SELECT min(id) FROM comparisons)")
    export(env, out, "--format", "battles", "--since", "2021-06-01")
    assert len(json.loads((out / "battles.json").read_text())) == len(battles) - 1


@pytest.mark.parametrize("salt", [None, "short"])
def test_export_without_a_salt_says_how_to_make_one(env, tmp_path, salt):
    env = {k: v for k, v in env.items() if k != "DREAMLOOP_EXPORT_SALT"}
    if salt:
        env["DREAMLOOP_EXPORT_SALT"] = salt
    result = dreamloop("export", "--format", "pickapic", "--out", str(tmp_path / "x"), env=env)
    message = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "DREAMLOOP_EXPORT_SALT" in message
    assert 'python -c "import secrets; print(secrets.token_hex(16))"' in message
    assert not (tmp_path / "x").exists()


def test_unknown_sources_are_refused(env, tmp_path):
    result = dreamloop("export", "--format", "battles", "--out", str(tmp_path),
                       "--sources", "explicit,rumour", env=env)
    assert result.returncode == 2 and "explicit,rumour" in result.stderr


async def test_a_missing_image_stops_the_export_and_keeps_the_files_before(seeded, env,
                                                                           tmp_path):
    out = tmp_path / "pickapic"
    out.mkdir()
    (out / "train.parquet").write_bytes(b"the export before")
    # an image of the test split: train and validation are complete by then
    key = next(key for (prompt, *_), key in zip(seeded.votes, seeded.keys, strict=True)
               if prompt in seeded.prompts["test"])
    (tmp_path / "blobs" / key).unlink()
    result = dreamloop("export", "--format", "pickapic", "--out", str(out), env=env)
    assert result.returncode == 1
    assert f"no blob at key {key!r}" in " ".join(result.stderr.split())
    assert [path.name for path in out.iterdir()] == ["train.parquet"]
    assert (out / "train.parquet").read_bytes() == b"the export before"


@pytest.mark.parametrize(("prompt", "clean"), [
    ("a fox with <@812345678901234567>", "a fox with @someone"),
    ("a fox with <@!812345678901234567> and <@&812345678901234568>",
     "a fox with @someone and @someone"),
    ("a fox in <#812345678901234569>", "a fox in #channel"),
    ("a fox <:happyfox:812345678901234570> <a:dance:812345678901234571>",
     "a fox :happyfox: :dance:"),
    ("a fox, 812345678901234567, 2024 edition", "a fox, [id], 2024 edition"),
    ("a fox, 1234567890123456 pixels", "a fox, 1234567890123456 pixels"),  # 16 digits: kept
])
def test_prompts_lose_their_discord_ids(prompt, clean):
    assert clean_prompt(prompt) == clean


async def test_unreliable_members_votes_are_exported_only_when_asked(seeded, env, db,
                                                                     tmp_path):
    unreliable = MEMBERS[0]
    async with db.acquire() as conn:  # five control pairs, each answered for the decoy
        images = await conn.fetch("SELECT id FROM images ORDER BY id LIMIT 6")
        for n in range(5):
            await conn.execute(
                """INSERT INTO rate_pairs (member_id, left_image_id, right_image_id, prompt,
                                           decoy_image_id, label, voted_at)
                   VALUES ($1, $2, $3, 'p', $3, 'b', now())""",
                unreliable, images[0]["id"], images[n + 1]["id"])
    out = tmp_path / "battles"
    export(env, out, "--format", "battles")
    kept = [str(member_hash(m)) for *_, m in seeded.votes if m != unreliable]
    assert [b["judge"] for b in json.loads((out / "battles.json").read_text())] == kept
    export(env, out, "--format", "battles", "--include-unreliable")
    assert len(json.loads((out / "battles.json").read_text())) == len(seeded.votes)

    export(env, tmp_path / "pickapic", "--format", "pickapic", "--include-unreliable")
    rows = [row for split in read_splits(tmp_path / "pickapic").values() for row in split]
    assert {row["reliability"] for row in rows if row["user_id"] == member_hash(unreliable)
            and row["source"] == "explicit"} == {0.0}
    assert {row["reliability"] for row in rows if row["user_id"] != member_hash(unreliable)
            } == {None}  # no controls yet: unknown, not perfect


def load_as_diffusion_dpo_does(out, cache):
    """Diffusion-DPO's train.py: load_dataset(args.dataset_name, cache_dir=...), then
    dataset[args.split] ("train" by default)."""
    import datasets

    return datasets.load_dataset(str(out), cache_dir=str(cache))


async def test_empty_splits_are_left_out_so_the_export_loads_for_training(seeded, env,
                                                                          tmp_path):
    out = tmp_path / "picks"
    out.mkdir()
    (out / "test.parquet").write_bytes(b"an earlier export's test split")
    # the U pick's three pairs share one train prompt: every other split is empty
    result = export(env, out, "--format", "pickapic", "--sources", "implicit_upscale")
    assert sorted(path.name for path in out.iterdir()) == ["README.md", "train.parquet"]
    assert result.stdout.splitlines() == [f"wrote {out / 'train.parquet'}: 3 rows"]
    card = (out / "README.md").read_text()
    assert "split: train" in card and "validation" not in card and "test" not in card
    dataset = load_as_diffusion_dpo_does(out, tmp_path / "cache")
    assert list(dataset) == ["train"]
    train = dataset["train"]
    assert train.num_rows == 3 and train.column_names[:19] == [c for c, _ in PICKAPIC_V2]
    assert {row["label_0"] for row in train} == {1.0}
    assert all(Image.open(io.BytesIO(row["jpg_0"])).size == (8, 8) for row in train)


async def test_a_full_export_loads_every_split(seeded, env, tmp_path):
    out = tmp_path / "pickapic"
    export(env, out, "--format", "pickapic")
    dataset = load_as_diffusion_dpo_does(out, tmp_path / "cache")
    assert list(dataset) == list(SPLIT_FILES)
    assert {name: split.num_rows for name, split in dataset.items()} == {
        name: len(rows) for name, rows in read_splits(out).items()}


async def test_an_export_with_no_pairs_writes_nothing(db, env, tmp_path):
    result = export(env, tmp_path / "none", "--format", "pickapic")
    assert result.stdout.strip() == "nothing written: no pairs to export yet"
    assert not list((tmp_path / "none").iterdir())
