"""`procctl run FILE`: start an instance; with --wait, follow it until it settles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from procctl.agent import values
from procctl.agent.definition import parse_definition, resolve_params
from procctl.agent.errors import Refused
from procctl.agent.follower import Send
from procctl.agent.messages import Event, Result, RunRequest

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: RunRequest, send: Send) -> None:
    if agent.stopping.is_set():
        raise Refused("the agent is stopping and takes no new instances",
                      hint="run the command again in a moment")
    # New instances do not wait for the start-up's signal files, nor for the recovery:
    # a correlation ID that a recovered instance holds is still refused
    # (checkpoints.correlation_id is unique in the store).
    await agent.gate(agent.listed)
    definition = parse_definition(request.source, request.file)
    params = resolve_params(definition.params, from_file=values.decode(request.params),
                            process_name=definition.name)
    base_dir = request.base_dir or (str(Path(request.file).parent) if request.file
                                    else os.getcwd())
    trigger = {"id": "cli", "kind": "cli", "file": request.file, "base_dir": base_dir}
    instance_id, queue = await agent.manager.start(definition, params, trigger,
                                                   subscribe=request.wait)
    await send(Event({"kind": "instance_created", "instance_id": instance_id}))
    if queue is None:
        await send(Result({"instance_id": instance_id, "status": "running"}))
        return
    await agent.follower.follow(instance_id, send, queue, until_intermediate=True)
