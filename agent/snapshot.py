"""Snapshots: what a checkpoint stores, as versioned JSON with typed values.

A snapshot is the whole state an instance needs to go on after a checkpoint: its
position (a path of frames), the live variables, the step results later steps read,
and the instance's identity. `dumps`/`loads` round-trip it exactly; `loads` upgrades
older format versions through MIGRATIONS, one version at a time. The format is
documented in docs/snapshot-format.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from procctl.agent import values

FORMAT = "procctl.snapshot"
VERSION = 1

#: MIGRATIONS[n] turns a version-n document into version n+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}


class SnapshotError(ValueError):
    """A snapshot document that cannot be read."""


@dataclass(frozen=True)
class Frame:
    """One level of the position: which block, which step in it, loop state if any.

    `block` names the block inside the enclosing step ("steps" at the top, "then",
    "else", "body", "cases[1]", "default", "branches[0]", "do", "catch", "finally");
    `index` is the step's index in that block. `loop` is the enclosing step's own
    state, when it has some: a loop body's items, iteration and values so far; an
    inclusive step's selected branches and their results; a scope's error (catch) or
    pending outcome (finally).
    """

    block: str
    index: int
    loop: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"block": self.block, "index": self.index}
        if self.loop is not None:
            data["loop"] = values.encode(self.loop)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Frame:
        loop = data.get("loop")
        return cls(str(data["block"]), int(data["index"]),
                   None if loop is None else values.decode(loop))


@dataclass(frozen=True)
class Snapshot:
    instance_id: str
    process_name: str
    process_version: str | None
    definition_sha256: str
    checkpoint_id: str
    hydration_point: str
    correlation_id: str
    position: tuple[Frame, ...]
    variables: dict[str, Any]
    results: dict[str, Any]
    iteration: int
    original_start_utc: str
    trigger_id: str
    created_at: str
    extra: dict[str, Any] = field(default_factory=dict)


def dumps(snapshot: Snapshot) -> str:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "instance_id": snapshot.instance_id,
        "process": {"name": snapshot.process_name, "version": snapshot.process_version},
        "definition_sha256": snapshot.definition_sha256,
        "checkpoint_id": snapshot.checkpoint_id,
        "hydration_point": snapshot.hydration_point,
        "correlation_id": snapshot.correlation_id,
        "position": [frame.to_json() for frame in snapshot.position],
        "variables": values.encode(snapshot.variables),
        "results": values.encode(snapshot.results),
        "iteration": snapshot.iteration,
        "original_start_utc": snapshot.original_start_utc,
        "trigger_id": snapshot.trigger_id,
        "created_at": snapshot.created_at,
        "extra": values.encode(snapshot.extra),
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> Snapshot:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SnapshotError(f"snapshot is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not a procctl snapshot (no format key)")
    version = document.get("version")
    if not isinstance(version, int) or version < 1:
        raise SnapshotError(f"snapshot has no valid version: {version!r}")
    if version > VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is newer than this procctl reads ({VERSION})")
    while version < VERSION:
        document = MIGRATIONS[version](document)
        version += 1
        document["version"] = version
    try:
        return Snapshot(
            instance_id=document["instance_id"],
            process_name=document["process"]["name"],
            process_version=document["process"]["version"],
            definition_sha256=document["definition_sha256"],
            checkpoint_id=document["checkpoint_id"],
            hydration_point=document["hydration_point"],
            correlation_id=document["correlation_id"],
            position=tuple(Frame.from_json(f) for f in document["position"]),
            variables=values.decode(document["variables"]),
            results=values.decode(document["results"]),
            iteration=int(document["iteration"]),
            original_start_utc=document["original_start_utc"],
            trigger_id=document["trigger_id"],
            created_at=document["created_at"],
            extra=values.decode(document.get("extra", {})),
        )
    except (KeyError, TypeError) as exc:
        raise SnapshotError(f"snapshot is missing a field: {exc}") from exc
