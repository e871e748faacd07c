"""`procctl purge-expired`: apply the TTL policies now, with or without the agent."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from procctl.agent.client import AgentClient
from procctl.agent.expiry import expire_without_agent, find_expired
from procctl.cli import render
from procctl.cli.options import global_options, read_store
from procctl.store import Store


def purge_expired_command(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be done.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Expire paused and failed instances whose checkpoint outlived its TTL."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    done: list[dict[str, Any]] = []
    left: list[dict[str, Any]] = []
    if client.is_running():
        done = client.request("purge_expired", dry_run=dry_run)["expired"]
    elif options.home.db.exists() and dry_run:  # only reads: the store is left as it is
        for expiry in read_store(options.home, find_expired):
            (left if expiry.action == "resume" else done).append(expiry.to_json())
    elif options.home.db.exists():
        store = Store(options.home.db, must_exist=True)
        try:
            for expiry in find_expired(store):
                if expiry.action == "resume":
                    left.append(expiry.to_json())  # only an agent can run the process on
                elif expire_without_agent(store, expiry):
                    done.append(expiry.to_json())
        finally:
            store.close()
    if as_json:
        render.print_json({"dry_run": dry_run, "expired": done, "left_for_agent": left})
        return
    verb = "Would expire" if dry_run else "Expired"
    if not done and not left:
        render.console.print("Nothing has expired.")
    for item in done:
        action = ("failed (reason expired), snapshot discarded" if item["action"] == "failed"
                  else "resumed with its on_expire payload")
        render.console.print(f"{verb} {item['instance_id']}: {action}")
    for item in left:
        render.console.print(f"{item['instance_id']}: resumes with its on_expire payload when "
                             "the agent starts")
