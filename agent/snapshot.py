"""Snapshots: what a checkpoint stores, as versioned JSON with typed values.

A snapshot is the whole state an instance needs to go on after a checkpoint: its
position (a path of frames, each with its step's typed frame state, if any), the live
variables, the step results later steps read, and the instance's identity.
`dumps`/`loads` round-trip it exactly; `loads` upgrades older format versions through
MIGRATIONS, one version at a time. The format is documented in docs/snapshot-format.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from procctl.agent import values
from procctl.agent.engine.frames import FRAME_STATES, FrameState, field_names

FORMAT = "procctl.snapshot"
VERSION = 2


class SnapshotError(ValueError):
    """A snapshot document that cannot be read."""


@dataclass(frozen=True)
class Frame:
    """One level of the position: which block, which step in it, and the enclosing
    step's own state while that block runs, if it has some (engine/frames.py).

    `block` names the block inside the enclosing step ("steps" at the top, "then",
    "else", "body", "cases[1]", "default", "branches[0]", "do", "catch", "finally");
    `index` is the step's index in that block.
    """

    block: str
    index: int
    state: FrameState | None = None

    def to_json(self) -> dict[str, Any]:
        """The frame as the document holds it (values in the state not yet typed)."""
        data: dict[str, Any] = {"block": self.block, "index": self.index}
        if self.state is not None:
            data["state"] = {"kind": self.state.TAG, **self.state.to_fields()}
        return data

    @classmethod
    def from_json(cls, data: Any, where: str = "position") -> Frame:
        """A frame from its decoded JSON; SnapshotError names what is wrong, and where."""
        if not isinstance(data, dict):
            raise SnapshotError(f"snapshot {where} is not an object")
        try:
            block, index = data["block"], data["index"]
        except KeyError as exc:
            raise SnapshotError(f"snapshot {where} is missing a field: {exc}") from None
        if not isinstance(block, str) or isinstance(index, bool) or not isinstance(index, int):
            raise SnapshotError(f"snapshot {where} has a bad block or index: "
                                f"{block!r}, {index!r}")
        state = data.get("state")
        return cls(block, index, None if state is None else
                   _state_from_json(state, f"{where} (block {block!r})"))


def _state_from_json(data: Any, where: str) -> FrameState:
    if not isinstance(data, dict):
        raise SnapshotError(f"snapshot {where}: the frame state is not an object")
    kind = data.get("kind")
    cls = FRAME_STATES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise SnapshotError(f"snapshot {where}: unknown frame state kind {kind!r} "
                            f"(known: {', '.join(sorted(FRAME_STATES))})")
    names = field_names(cls)
    missing = [name for name in names if name not in data]
    if missing:
        raise SnapshotError(f"snapshot {where}: the {kind} state is missing a field: "
                            f"{missing[0]!r}")
    unknown = sorted(set(data) - set(names) - {"kind"})
    if unknown:
        raise SnapshotError(f"snapshot {where}: the {kind} state has an unknown field: "
                            f"{unknown[0]!r}")
    try:
        return cls.from_fields({name: data[name] for name in names})
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"snapshot {where}: the {kind} state is not valid: "
                            f"{exc}") from None


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
    """The snapshot's JSON document (compact, UTF-8). TypeError for a value that cannot
    be stored. The typed parts are written by values.dump_bytes (orjson) and embedded
    as they are."""
    typed = orjson.Fragment
    document = {
        "format": FORMAT,
        "version": VERSION,
        "instance_id": snapshot.instance_id,
        "process": {"name": snapshot.process_name, "version": snapshot.process_version},
        "definition_sha256": snapshot.definition_sha256,
        "checkpoint_id": snapshot.checkpoint_id,
        "hydration_point": snapshot.hydration_point,
        "correlation_id": snapshot.correlation_id,
        "position": typed(values.dump_bytes([f.to_json() for f in snapshot.position])),
        "variables": typed(values.dump_bytes(snapshot.variables)),
        "results": typed(values.dump_bytes(snapshot.results)),
        "iteration": snapshot.iteration,
        "original_start_utc": snapshot.original_start_utc,
        "trigger_id": snapshot.trigger_id,
        "created_at": snapshot.created_at,
        "extra": typed(values.dump_bytes(snapshot.extra)),
    }
    return orjson.dumps(document).decode("utf-8")


def loads(text: str | bytes) -> Snapshot:
    try:
        document = values.parse(text)
    except ValueError as exc:
        raise SnapshotError(f"snapshot is not JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not a procctl snapshot (no format key)")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SnapshotError(f"snapshot has no valid version: {version!r}")
    if version > VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is newer than this procctl reads ({VERSION})")
    while version < VERSION:
        document = MIGRATIONS[version](document)
        version += 1
        document["version"] = version
    decode: Callable[[Any], Any] = values.decode if values.may_hold_tags(text) else _same
    try:
        position = decode(document["position"])
        if not isinstance(position, list):
            raise SnapshotError("snapshot position is not a list")
        return Snapshot(
            instance_id=document["instance_id"],
            process_name=document["process"]["name"],
            process_version=document["process"]["version"],
            definition_sha256=document["definition_sha256"],
            checkpoint_id=document["checkpoint_id"],
            hydration_point=document["hydration_point"],
            correlation_id=document["correlation_id"],
            position=tuple(Frame.from_json(frame, f"position[{i}]")
                           for i, frame in enumerate(position)),
            variables=decode(document["variables"]),
            results=decode(document["results"]),
            iteration=int(document["iteration"]),
            original_start_utc=document["original_start_utc"],
            trigger_id=document["trigger_id"],
            created_at=document["created_at"],
            extra=decode(document.get("extra", {})),
        )
    except (KeyError, TypeError) as exc:
        raise SnapshotError(f"snapshot is missing a field: {exc}") from exc
    except SnapshotError:
        raise
    except ValueError as exc:  # a typed value that cannot be read
        raise SnapshotError(str(exc)) from exc


def _same(data: Any) -> Any:
    return data


# -- migrations ----------------------------------------------------------------------


def _v1_state_kind(block: str, loop: dict[str, Any]) -> str:
    """Version 1 kept a frame's state as an untagged dict (under "loop"); which step
    it belonged to follows from the block's name (and, in a body, from its keys)."""
    if block == "body":
        return "foreach" if "items" in loop else "while"
    if block.startswith("branches["):
        return "inclusive"
    if block in ("catch", "finally"):
        return block
    raise SnapshotError(f"version-1 snapshot: a frame state in block {block!r}, where no "
                        "step keeps one")


def _v1_to_v2(document: dict[str, Any]) -> dict[str, Any]:
    """Version 2 tags each frame state with its kind, under "state" (was "loop")."""
    frames = document.get("position")
    if not isinstance(frames, list):
        return document  # refused as it is read
    position = []
    for frame in frames:
        if not isinstance(frame, dict):
            raise SnapshotError("version-1 snapshot: a frame of the position is not an object")
        frame = dict(frame)
        loop = frame.pop("loop", None)
        if isinstance(loop, dict):
            frame["state"] = {"kind": _v1_state_kind(str(frame.get("block")), loop), **loop}
        position.append(frame)
    return {**document, "position": position}


#: MIGRATIONS[n] turns a version-n document into version n+1.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}
