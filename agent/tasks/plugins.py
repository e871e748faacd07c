"""Task plugins: a Python function named "module:function", or an entry point in the
group `procctl.tasks`. The contract is in docs/plugins.md.

The function gets the rendered `with` table as keyword arguments (and the step's
TaskContext as `context`, when it has a parameter of that name). It may be sync (run
in a worker thread, so it does not hold up other instances) or async. It returns a
JSON-able value, or raises to fail the step; the exception's class names are the
error kinds a `retry.on` list can name.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from procctl.agent import values
from procctl.agent.tasks.base import TaskContext, TaskError, TaskFunction

ENTRY_POINT_GROUP = "procctl.tasks"
_REFERENCE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def is_plugin_reference(name: str) -> bool:
    return ":" in name


def _entry_points() -> dict[str, EntryPoint]:
    return {point.name: point for point in entry_points(group=ENTRY_POINT_GROUP)}


def _module_findable(module: str, base_dir: Path) -> bool:
    top = module.split(".")[0]
    if top in sys.modules:
        return True
    if importlib.machinery.PathFinder.find_spec(top, [str(base_dir)]) is not None:
        return True
    return importlib.util.find_spec(top) is not None


def check_task_reference(name: str, base_dir: Path) -> str | None:
    """Why `name` names no task (None when it does). Imports nothing."""
    if is_plugin_reference(name):
        if not _REFERENCE.match(name):
            return f"task {name!r} is not of the form \"module:function\""
        module = name.split(":")[0]
        if not _module_findable(module, base_dir):
            return (f"task {name!r}: no module {module.split('.')[0]!r} beside the "
                    "definition or on the agent's Python path")
        return None
    if name in _entry_points():
        return None
    return f"unknown task {name!r}"


def _import_function(name: str, base_dir: Path) -> Callable[..., Any]:
    """Import the module of "module:function". A module beside the definition is
    imported under a package private to that directory, so two definitions' modules
    of the same name stay apart; others come from the agent's Python path."""
    module_name, function_name = name.split(":")
    top = module_name.split(".")[0]
    beside = importlib.machinery.PathFinder.find_spec(top, [str(base_dir)]) is not None
    if beside:
        home = _directory_package(base_dir)
        full_name = f"{home}.{module_name}"
        sys.path.insert(0, str(base_dir))  # for the module's own absolute imports
    else:
        full_name = module_name
    try:
        module = importlib.import_module(full_name)
    except Exception as exc:
        raise TaskError(f"cannot import plugin module {module_name!r}: "
                        f"{type(exc).__name__}: {exc}") from exc
    finally:
        if beside:
            sys.path.remove(str(base_dir))
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TaskError(f"plugin module {module_name!r} has no function {function_name!r}")
    return function  # type: ignore[no-any-return]


def _directory_package(directory: Path) -> str:
    """The name of a package whose modules are the files of `directory`."""
    name = "_procctl_plugins_" + hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    if name not in sys.modules:
        package = types.ModuleType(name)
        package.__path__ = [str(directory)]
        sys.modules[name] = package
    return name


def load_plugin(name: str, base_dir: Path) -> TaskFunction:
    """The task function behind a plugin name; raises TaskError if it cannot be loaded."""
    if is_plugin_reference(name):
        function = _import_function(name, base_dir)
    else:
        point = _entry_points().get(name)
        if point is None:
            raise TaskError(f"unknown task {name!r} (no built-in task or "
                            f"{ENTRY_POINT_GROUP} entry point of that name)")
        try:
            function = point.load()
        except Exception as exc:
            raise TaskError(f"cannot load entry point {name!r} ({point.value}): "
                            f"{type(exc).__name__}: {exc}") from exc
    return _adapter(name, function)


def _adapter(name: str, function: Callable[..., Any]) -> TaskFunction:
    signature = inspect.signature(function)
    wants_context = "context" in signature.parameters

    async def run(args: Mapping[str, Any], context: TaskContext) -> Any:
        kwargs = dict(args)
        if wants_context:
            kwargs["context"] = context
        try:
            signature.bind(**kwargs)
        except TypeError as exc:
            raise TaskError(f"plugin {name!r}: {exc}") from None
        if inspect.iscoroutinefunction(function):
            value = await function(**kwargs)
        else:
            value = await asyncio.to_thread(function, **kwargs)
            if inspect.isawaitable(value):
                value = await value
        try:
            values.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TaskError(f"plugin {name!r} returned a {type(value).__name__}, which "
                            f"cannot be stored as JSON: {exc}") from None
        return value

    return run
