"""`procctl purge-expired`: apply the TTL policies now, with or without the agent.

Either way it goes a batch at a time (agent/expiry.py: PURGE_BATCH instances per
transaction, read from the expiry index where the last batch ended), and the output
follows as each batch is done: the agent streams a `purge_progress` event per batch, so
the command waits for a line at most as long as one batch takes, never for the whole
purge. `--json` writes its object as the batches come, with bounded memory.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from procctl.agent.client import AgentClient
from procctl.agent.expiry import Expiry, expired_batches, purge_without_agent
from procctl.cli import render
from procctl.cli.options import global_options, has_store, open_home_store, read_store
from procctl.store import StoreContract

#: the instances a purge names one by one; beyond them, progress lines and a count
LISTED = 100
#: seconds the command waits for the agent's next line (a batch takes well under one)
STALL_SECONDS = 60.0


class PurgeOutput:
    """Prints a purge's outcome as its batches come."""

    def __init__(self, *, dry_run: bool, as_json: bool) -> None:
        self.dry_run = dry_run
        self.as_json = as_json
        self.done = 0
        self.left: list[dict[str, Any]] = []
        if as_json:
            sys.stdout.write(f'{{"dry_run": {json.dumps(dry_run)}, "expired": [')

    def batch(self, done: list[dict[str, Any]], left: list[dict[str, Any]]) -> None:
        for item in done:
            self.done += 1
            if self.as_json:
                sys.stdout.write(("\n  " if self.done == 1 else ",\n  ")
                                 + json.dumps(item, ensure_ascii=False))
            elif self.done <= LISTED:
                render.console.print(f"{self._verb()} {item['instance_id']}: {_action(item)}")
        self.left.extend(left)
        if self.as_json:
            sys.stdout.flush()
        elif self.done > LISTED and done:
            render.note(f"... {self.done:,} {'would expire' if self.dry_run else 'expired'}"
                        " so far")

    def finish(self) -> None:
        if self.as_json:
            left = ",\n  ".join(json.dumps(item, ensure_ascii=False) for item in self.left)
            sys.stdout.write(f"{chr(10) if self.done else ''}], \"left_for_agent\": ["
                             f"{chr(10) + '  ' + left + chr(10) if left else ''}]}}\n")
            sys.stdout.flush()
            return
        if not self.done and not self.left:
            render.console.print("Nothing has expired.")
        if self.done > LISTED:
            render.console.print(f"{self._verb()} {self.done:,} instances in all (the first "
                                 f"{LISTED} are listed above); procctl list --status failed "
                                 "lists the failed ones")
        for item in self.left:
            render.console.print(f"{item['instance_id']}: resumes with its on_expire payload "
                                 "when the agent starts")

    def _verb(self) -> str:
        return "Would expire" if self.dry_run else "Expired"


def _action(item: dict[str, Any]) -> str:
    return ("failed (reason expired), snapshot discarded" if item["action"] == "failed"
            else "resumed with its on_expire payload")


def _split(batch: list[Expiry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A dry run without an agent: what would be expired now, and what waits for one."""
    return ([e.to_json() for e in batch if e.action != "resume"],
            [e.to_json() for e in batch if e.action == "resume"])


def purge_expired_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be done.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Expire paused and failed instances whose checkpoint outlived its TTL."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    running = client.is_running()
    batches: list[list[Expiry]] = []
    stored = not running and has_store(options.home)
    if stored and dry_run:
        # Only reads: the store is left as it is (read again whole if an agent opened
        # it meanwhile, so the output starts once the reading is done).
        def read(store: StoreContract) -> list[list[Expiry]]:
            return list(expired_batches(store))

        batches = read_store(options.home, read)
    output = PurgeOutput(dry_run=dry_run, as_json=as_json)
    if running:
        for kind, payload in client.stream("purge_expired", dry_run=dry_run,
                                           timeout=STALL_SECONDS):
            if kind == "event" and payload.get("kind") == "purge_progress":
                output.batch(payload["data"]["expired"], [])
    elif stored and dry_run:
        for batch in batches:
            output.batch(*_split(batch))
    elif stored:
        store = open_home_store(options.home, must_exist=True)
        try:
            for batch in expired_batches(store):
                done = purge_without_agent(store, batch)
                output.batch([e.to_json() for e in done],
                             [e.to_json() for e in batch if e.action == "resume"])
        finally:
            store.close()
    output.finish()
