"""`procctl validate FILE`: every problem of a definition, before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from procctl.agent.definition import load_definition
from procctl.agent.definition.model import CheckpointStep, Definition
from procctl.agent.errors import DefinitionError
from procctl.cli import render
from procctl.cli.payload_hints import expected_fields, fields_text


def validate_command(
    file: Annotated[Path, typer.Argument(help="The process definition (TOML).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for editors and CI.")] = False,
) -> None:
    """Check a definition: TOML syntax, step kinds and fields, ids, expressions, variables.

    Exits 3 when it finds errors, 0 when it finds only warnings (or nothing)."""
    try:
        definition = load_definition(file)
    except DefinitionError as exc:
        if as_json:
            render.print_json({"file": str(file), "valid": False,
                               "errors": sum(p.severity == "error" for p in exc.problems),
                               "warnings": sum(p.severity == "warning" for p in exc.problems),
                               "problems": [p.to_json() for p in exc.problems]})
            raise typer.Exit(exc.exit_code) from None
        raise
    steps = definition.all_steps()
    checkpoint_ids = {step.id for step in steps if isinstance(step, CheckpointStep)}
    checkpoints = {
        step_id: {"variables": sorted(live.variables),
                  "results": ["*"] if live.all_results else sorted(live.results),
                  "payload": _payload(definition, step_id)}
        for step_id, live in definition.liveness.items()
        if step_id in checkpoint_ids}
    if as_json:
        render.print_json({
            "file": str(file), "valid": True, "process": definition.name,
            "version": definition.version, "steps": len(steps),
            "params": [{"name": p.name, "type": p.type, "required": p.required,
                        "default": p.default} for p in definition.params],
            "checkpoints": checkpoints,
            "errors": 0, "warnings": len(definition.warnings),
            "problems": [p.to_json() for p in definition.warnings],
        })
        return
    for warning in definition.warnings:
        render.problem(warning)
    findings = (f"{len(definition.warnings)} warning(s)" if definition.warnings
                else "no problems")
    render.console.print(
        f"[green]✓[/] {render.safe_text(file)}: process "
        f"[bold]{render.safe_text(definition.name)}[/], {len(steps)} step(s), {findings}")
    for spec in definition.params:
        default = f", default {spec.default!r}" if spec.has_default else ""
        need = "required" if spec.required and not spec.has_default else "optional"
        render.console.print(f"  param [bold]{spec.name}[/]: {spec.type}, {need}"
                             f"{render.safe_text(default)}")
    for step_id, stores in checkpoints.items():
        render.console.print(f"  checkpoint [bold]{render.safe_text(step_id)}[/] stores: "
                             + render.safe_text(", ".join(stores["variables"]) or "no variables")
                             + (render.safe_text(f"; results of {', '.join(stores['results'])}")
                                if stores["results"] else ""))
        fields = expected_fields(definition, step_id)
        if fields and fields[0].declared:
            render.console.print(f"  checkpoint [bold]{render.safe_text(step_id)}[/] expects: "
                                 + render.safe_text(fields_text(fields)))
        elif fields:
            render.console.print(f"  checkpoint [bold]{render.safe_text(step_id)}[/] payload "
                                 "fields read later (no expects): "
                                 + render.safe_text(fields_text(fields)))


def _payload(definition: Definition, step_id: str) -> dict[str, Any]:
    """What the signal that resumes checkpoint `step_id` carries, as --json prints it."""
    step = next(s for s in definition.all_steps() if s.id == step_id)
    fields = expected_fields(definition, step_id)
    return {"declared": isinstance(step, CheckpointStep) and step.expects is not None,
            "fields": [{"name": f.name, "type": f.type, "optional": f.optional}
                       for f in fields]}
