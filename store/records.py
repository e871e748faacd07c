"""Plain frozen records returned by the store. Payload fields hold JSON text."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DefinitionRecord:
    sha256: str
    name: str
    version: str | None
    path: str | None
    source: str
    created_at: str


@dataclass(frozen=True)
class InstanceRecord:
    id: str
    definition_sha256: str
    process_name: str
    process_version: str | None
    status: str
    params_json: str
    trigger_json: str
    started_at: str
    updated_at: str
    ended_at: str | None
    result_json: str | None
    error_json: str | None


@dataclass(frozen=True)
class EventRecord:
    id: int
    instance_id: str
    at: str
    kind: str
    step_id: str | None
    step_path: str | None
    data_json: str
