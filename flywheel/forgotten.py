"""Keeping forgotten members out of exports, new and old. Pure: which rows go.

A forgotten member leaves two marks (db/migrations/0010_forget.sql): their salted hash,
which every row they made carries as user_id (judge in battles), and the ids of the images
and comparisons that held their work, which rows about their images carry as image uids
and ranking ids, whoever voted. A row with any of these is dropped, from an export being
written (an older backup restored brings their rows back) and from one written before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flywheel.exports import FeedbackRow, PairRow, image_uid, member_hash


@dataclass(frozen=True)
class Forgotten:
    through: int  # the last forgotten_members row included
    member_hashes: frozenset[int]
    image_ids: frozenset[int]
    comparison_ids: frozenset[int]
    image_uids: frozenset[str] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "image_uids", frozenset(map(image_uid, self.image_ids)))

    def keeps_pair(self, pair: PairRow, salt: str) -> bool:
        return not (pair.id in self.comparison_ids
                    or {pair.a.id, pair.b.id} & self.image_ids
                    or member_hash(pair.member_id, salt) in self.member_hashes)

    def keeps_feedback(self, row: FeedbackRow, salt: str) -> bool:
        return not (row.image_id in self.image_ids
                    or member_hash(row.member_id, salt) in self.member_hashes)

    def keeps_battle(self, battle: dict[str, Any]) -> bool:
        # Battles written before ranking_id was added carry only the judge.
        return not (battle.get("ranking_id") in self.comparison_ids
                    or int(battle["judge"]) in self.member_hashes)

    def table_mask(self, table: pa.Table) -> pa.ChunkedArray:
        """True for the rows of a Pick-a-Pic or KTO table that stay."""
        drop = pc.is_in(table["user_id"], pa.array(sorted(self.member_hashes), pa.int64()))
        uids = pa.array(sorted(self.image_uids), pa.string())
        for column in ("image_0_uid", "image_1_uid", "image_uid"):
            if column in table.column_names:
                drop = pc.or_(drop, pc.is_in(table[column], uids))
        if "ranking_id" in table.column_names:
            ranked = pa.array(sorted(self.comparison_ids), pa.int64())
            drop = pc.or_(drop, pc.is_in(table["ranking_id"], ranked))
        return pc.invert(drop)
