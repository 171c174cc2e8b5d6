"""Fair share of the GPUs: deficit round-robin (Shreedhar & Varghese, 1995) on predicted
GPU time, across guilds and, within each guild, across its members.

Each visit to a flow (a guild, or a member in it) adds a quantum to its deficit; the flow
sends jobs while its next job's cost fits in its deficit, then the next flow's turn comes.
So every backlogged flow gets the same GPU time however many or large its jobs are, and a
member with one quick job waits about one job per other flow, not behind a flood.

Pure: the dispatcher (bot.dispatcher) keeps the state in PostgreSQL between calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

NOBODY = 0  # the flow of jobs with no member or no guild (the CLI's, DMs)
TURBO_FACTOR = 2.0  # a turbo job counts twice its GPU time, as in Midjourney
REFERENCE_PIXELS = 512 * 512


@dataclass(frozen=True)
class Candidate:
    """A waiting job as the fair share sees it."""

    job_id: int
    member: int
    guild: int
    cost: float  # predicted GPU time, in reference units (see predicted_cost)


def predicted_cost(steps: int, width: int, height: int, images: int, lane: str = "fast") -> float:
    """A simple cost model: GPU time grows with steps × pixels × images (one unit: one step
    of one 512×512 image); turbo counts double."""
    cost = steps * (width * height / REFERENCE_PIXELS) * images
    return cost * (TURBO_FACTOR if lane == "turbo" else 1.0)


@dataclass
class Drr:
    """One level of deficit round-robin. order: the active flows, the head's turn now;
    visiting: the head has had its quantum for this turn."""

    order: list[int] = field(default_factory=list)
    deficits: dict[int, float] = field(default_factory=dict)
    visiting: bool = False

    def next(self, active: list[int], head_cost: Callable[[int], float],
             quantum: float) -> int:
        """The flow whose job goes next, charged its cost. active: the flows with a job
        waiting, in the order new ones join; quantum > 0."""
        self._sync(active)
        while True:
            head = self.order[0]
            if not self.visiting:
                self.deficits[head] = self.deficits.get(head, 0.0) + quantum
                self.visiting = True
            cost = head_cost(head)
            if cost <= self.deficits[head]:
                self.deficits[head] -= cost
                return head
            self.order.append(self.order.pop(0))  # its turn is over
            self.visiting = False

    def _sync(self, active: list[int]) -> None:
        """Flows with nothing waiting leave (their deficit goes: DRR's rule, so saved-up
        credit cannot burst later); new ones join at the end."""
        if not active:
            raise ValueError("no flow has a job waiting")
        present = set(active)
        if self.order and self.order[0] not in present:
            self.visiting = False
        self.order = [f for f in self.order if f in present]
        self.order += [f for f in active if f not in self.order]
        self.deficits = {f: d for f, d in self.deficits.items() if f in present}

    def drop(self, flow: int) -> bool:
        """Forget a flow (its member was forgotten); False if it had no state here."""
        if flow not in self.order and flow not in self.deficits:
            return False
        if self.order and self.order[0] == flow:
            self.visiting = False
        self.order = [f for f in self.order if f != flow]
        self.deficits.pop(flow, None)
        return True

    def to_json(self) -> dict:
        return {"order": self.order, "deficits": [[f, d] for f, d in self.deficits.items()],
                "visiting": self.visiting}

    @classmethod
    def from_json(cls, data: dict) -> Drr:
        return cls(list(data.get("order", [])), {int(f): float(d) for f, d in
                                                 data.get("deficits", [])},
                   bool(data.get("visiting", False)))


@dataclass
class FairShare:
    """Two levels: guilds take turns, and members take turns within their guild."""

    guilds: Drr = field(default_factory=Drr)
    members: dict[int, Drr] = field(default_factory=dict)

    def pick(self, candidates: list[Candidate], count: int) -> list[Candidate]:
        """Up to count candidates in fair order; each member's own jobs oldest first."""
        queues = _queues(candidates)
        quantum = max((c.cost for c in candidates), default=1.0) or 1.0
        picked: list[Candidate] = []
        while queues and len(picked) < count:
            guild = self.guilds.next(list(queues), lambda g: self._peek(queues[g], g,
                                                                        quantum)[1].cost,
                                     quantum)
            inner, job = self._peek(queues[guild], guild, quantum)
            self.members[guild] = inner
            picked.append(job)
            _pop(queues, guild, job.member)
        self.members = {g: d for g, d in self.members.items() if g in queues}
        return picked

    def _peek(self, members: dict[int, list[Candidate]], guild: int,
              quantum: float) -> tuple[Drr, Candidate]:
        """The member level's next job in guild, and its state once that job is taken."""
        inner = Drr.from_json(self.members.get(guild, Drr()).to_json())
        member = inner.next(list(members), lambda m: members[m][0].cost, quantum)
        return inner, members[member][0]

    def forget_member(self, member: int) -> bool:
        """Take a forgotten member out of every guild's turns; False if they had none."""
        return any([inner.drop(member) for inner in self.members.values()])

    def to_json(self) -> dict:
        return {"guilds": self.guilds.to_json(),
                "members": [[g, d.to_json()] for g, d in self.members.items()]}

    @classmethod
    def from_json(cls, data: dict | None) -> FairShare:
        data = data or {}
        return cls(Drr.from_json(data.get("guilds", {})),
                   {int(g): Drr.from_json(d) for g, d in data.get("members", [])})


def fifo(candidates: list[Candidate], count: int) -> list[Candidate]:
    """First come, first served (what dreamloop did before; the benchmark's baseline)."""
    return sorted(candidates, key=lambda c: c.job_id)[:count]


def _queues(candidates: list[Candidate]) -> dict[int, dict[int, list[Candidate]]]:
    """guild → member → jobs oldest first; guilds and members in order of their oldest job."""
    queues: dict[int, dict[int, list[Candidate]]] = {}
    for job in sorted(candidates, key=lambda c: c.job_id):
        queues.setdefault(job.guild, {}).setdefault(job.member, []).append(job)
    return queues


def _pop(queues: dict, guild: int, member: int) -> None:
    jobs = queues[guild][member]
    jobs.pop(0)
    if not jobs:
        del queues[guild][member]
    if not queues[guild]:
        del queues[guild]
