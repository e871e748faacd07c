"""Issue 11's targets: each procctl figure beside its limit, as a ratio, met or not.

Every limit but the fixed ones (10 ms, 0.3 ms) is measured in the same run, on the
same file system as the bench's home, right before and right after the procctl figure
it is compared with; a target is checked against the stricter of the two (the higher
rate, the lower latency), so a disturbed measurement cannot lower the bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from figures import table


@dataclass(frozen=True)
class Target:
    figure: str
    procctl: float
    limit: float
    unit: str  # of procctl and limit
    ratio: float  # procctl / limit
    bound: float  # the ratio the target asks for
    at_least: bool  # the ratio must be >= bound (else <= bound)
    limit_name: str  # what the limit is

    @property
    def met(self) -> bool:
        return self.ratio >= self.bound if self.at_least else self.ratio <= self.bound

    @property
    def target_text(self) -> str:
        sign = ">=" if self.at_least else "<="
        if self.bound < 1 and self.at_least:
            return f"{sign} {self.bound * 100:.0f} %"
        return f"{sign} {self.bound:g}x"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target_text, "met": self.met}


def _target(figure: str, procctl: float, limit: float, unit: str, bound: float,
            at_least: bool, limit_name: str) -> Target:
    ratio = procctl / limit if limit > 0 else float("inf")
    return Target(figure, procctl, limit, unit, ratio, bound, at_least, limit_name)


def issue_targets(figures: dict[str, Any]) -> list[Target]:
    """The targets of issue 11 from the figures `bench/checkpoints.py --json` prints."""
    raw = figures["raw"]
    single = max(r["commits_per_s"] for r in raw["single_1kb"])
    large = max(r["commits_per_s"] for r in raw["single_100kb"])
    large_p99 = min(r["commit_p99_ms"] for r in raw["single_100kb"])
    batch = max(r["rows_per_s"] for r in raw["batch_100x1kb"])
    floor_p50 = min(f["p50_ms"] for f in figures["signal_floor"])
    mine = figures["procctl"]
    one_small = mine["one_instance_1kb"]["checkpoints_per_s"]
    many_small = mine["many_instances_1kb"]["checkpoints_per_s"]
    one_large = mine["one_instance_100kb"]
    signal = mine["signal"]["next_step_started"]
    encode = figures["encode"]["snapshot_dumps_median_ms"]
    return [
        _target("1 instance, ~1 KB: checkpoints/s", one_small, single, "/s", 0.40, True,
                "raw 1 KB commits/s"),
        _target("50 instances, ~1 KB: checkpoints/s", many_small, batch, "/s", 0.10, True,
                "raw 100-row batch rows/s"),
        _target("50 instances over 1 instance (~1 KB)", many_small, one_small, "/s", 4.0,
                True, "procctl 1 instance"),
        _target("1 instance, ~100 KB: checkpoints/s", one_large["checkpoints_per_s"],
                large, "/s", 0.70, True, "raw 100 KB commits/s"),
        _target("1 instance, ~100 KB: checkpoint p99", one_large["interval_p99_ms"],
                large_p99, "ms", 2.0, False, "raw 100 KB commit p99"),
        _target("signal rename -> next step: p50", signal["p50_ms"], floor_p50, "ms", 2.0,
                False, "floor p50"),
        _target("signal rename -> next step: p99", signal["p99_ms"], 10.0, "ms", 1.0,
                False, "fixed 10 ms"),
        _target("snapshot encode, nested 100 KB", encode, 0.3, "ms", 1.0, False,
                "fixed 0.3 ms"),
    ]


def median_shares(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Not targets, a second reading: for one instance, the raw commit's median time
    over the checkpoint's median time (from one checkpoint_saved to the next). A rate
    is set by its slowest moments too, which short bursts of other work on a shared
    machine hit unevenly; a median ignores a few slow commits (not a sustained load)."""
    shares = []
    for label, raw_key, mine_key in (("1 instance, ~1 KB", "single_1kb", "one_instance_1kb"),
                                     ("1 instance, ~100 KB", "single_100kb",
                                      "one_instance_100kb")):
        commit = min(r["commit_p50_ms"] for r in figures["raw"][raw_key])
        checkpoint = figures["procctl"][mine_key]["interval_p50_ms"]
        shares.append({"figure": label, "raw_commit_p50_ms": commit,
                       "checkpoint_p50_ms": checkpoint,
                       "share": commit / checkpoint if checkpoint > 0 else float("inf")})
    return shares


def _number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:.2f} ms"
    return f"{value:,.0f}{unit}"


def targets_table(targets: list[Target]) -> str:
    return table(
        ["figure", "procctl", "limit", "(limit is)", "ratio", "target", "met"],
        [[t.figure, _number(t.procctl, t.unit), _number(t.limit, t.unit), t.limit_name,
          f"{t.ratio * 100:.1f} %" if t.at_least and t.bound < 1 else f"{t.ratio:.2f}x",
          t.target_text, "yes" if t.met else "NO"] for t in targets])
