"""The builders of each step kind: raw TOML table -> a frozen step (or None, with the
problems recorded)."""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Any, assert_never

from procctl.agent.definition.builder import BuilderBase
from procctl.agent.definition.fields import (
    BUILTIN_VARIABLES,
    CASE_FIELDS,
    IDENTIFIER,
    RETRY_FIELDS,
    Where,
    did_you_mean,
    table_name,
)
from procctl.agent.definition.model import (
    AnyStep,
    Branch,
    CallStep,
    CheckpointStep,
    ForeachStep,
    IfStep,
    InclusiveStep,
    IntermediateReturnStep,
    ParallelStep,
    PayloadField,
    RetryPolicy,
    ReturnStep,
    ScheduledResumeStep,
    ScopeStep,
    SetStep,
    SignalStep,
    StepKindName,
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
)
from procctl.agent.definition.payload_fields import parse_expects, payload_problem
from procctl.agent.durations import parse_duration
from procctl.agent.errors import DefinitionError, ExpressionError
from procctl.agent.expressions import Expression, compile_template
from procctl.agent.tasks import BUILTIN_TASKS
from procctl.agent.tasks.plugins import check_task_reference, is_plugin_reference


class StepBuilders(BuilderBase):
    """`_build_<kind>` for every step kind, and the tables they share (retry,
    branches, on_expire)."""

    def build_kind(self, kind: StepKindName, raw: dict[str, Any], base: dict[str, Any],
                   where: Where) -> AnyStep | None:
        # Exhaustive over the kinds: strict mypy names a kind left without a builder.
        match kind:
            case "task":
                return self._build_task(raw, base, where)
            case "set":
                return self._build_set(raw, base, where)
            case "if":
                return self._build_if(raw, base, where)
            case "switch":
                return self._build_switch(raw, base, where)
            case "inclusive":
                return self._build_inclusive(raw, base, where)
            case "parallel":
                return self._build_parallel(raw, base, where)
            case "foreach":
                return self._build_foreach(raw, base, where)
            case "while":
                return self._build_while(raw, base, where)
            case "scope":
                return self._build_scope(raw, base, where)
            case "call":
                return self._build_call(raw, base, where)
            case "intermediate_return":
                return self._build_intermediate_return(raw, base, where)
            case "return":
                return self._build_return(raw, base, where)
            case "throw":
                return self._build_throw(raw, base, where)
            case "checkpoint":
                return self._build_checkpoint(raw, base, where)
            case "scheduled_resume":
                return self._build_scheduled_resume(raw, base, where)
            case "signal":
                return self._build_signal(raw, base, where)
            case _:
                assert_never(kind)

    def _build_task(self, raw: dict[str, Any], base: dict[str, Any],
                    where: Where) -> TaskStep | None:
        task = raw["task"]
        args = raw.get("with", {})
        if not isinstance(args, dict):
            self.problem("'with' must be a table of arguments", step=where, key="with",
                         hint='write with = { message = "hi" }')
            return None
        if not isinstance(task, str) or not task:
            self.problem("task must be a task name or \"module:function\"", step=where,
                         key="task")
            return None
        spec = BUILTIN_TASKS.get(task)
        if spec is None:
            trouble = check_task_reference(task, self.base_dir())
            if trouble is not None:
                close = None if is_plugin_reference(task) else did_you_mean(task, BUILTIN_TASKS)
                self.problem(trouble, step=where, key="task",
                             hint=close or f"built-in tasks: {', '.join(BUILTIN_TASKS)}; "
                             "a plugin is \"module:function\" (see docs/plugins.md)")
        else:
            for key in args:
                if key not in spec.args:
                    self.problem(f"task {task!r} takes no argument {key!r}", step=where,
                                 key="with",
                                 hint=did_you_mean(key, spec.args)
                                 or f"it takes {', '.join(spec.args)}")
            for key, required in spec.args.items():
                if required and key not in args:
                    self.problem(f"task {task!r} needs argument {key!r}", step=where,
                                 hint=f"add it under with = {{ {key} = ... }}")
        if task == "exec":
            self.check_argv(args.get("argv"), where)
        expressions = self.templates(args, where, "with")
        timeout = self.duration(raw, "timeout", where)
        return TaskStep(**base, task=task, args=tuple(args.items()),
                        arg_expressions=expressions, timeout=timeout,
                        retry=self.retry_policy(raw, where))

    def check_argv(self, argv: Any, where: Where) -> None:
        """`argv = "ls -l"`: a string where the list of the program and its arguments is
        meant (no shell splits it). One `{{ expression }}` may give a list: let through."""
        if not isinstance(argv, str):
            return
        try:
            if compile_template(argv).kind == "template":
                return
        except ExpressionError:
            return  # reported with the task's templates
        try:
            words = shlex.split(argv)
        except ValueError:
            words = argv.split()
        written = "[" + ", ".join(json.dumps(word) for word in words) + "]"
        self.problem(f"argv must be a list (the program, then each argument), not the "
                     f"string {argv!r}", step=where, key="with",
                     hint=f"write argv = {written}: exec runs no shell to split it")

    def base_dir(self) -> Path:
        return Path(self.file).resolve().parent if self.file else Path.cwd()

    def retry_policy(self, raw: dict[str, Any], where: Where) -> RetryPolicy:
        """`retry = { ... }`, or the short form `retries` (+ `retry_delay`)."""
        if "retry" not in raw:
            retries = raw.get("retries", 0)
            if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
                self.problem("retries must be a whole number, 0 or more", step=where,
                             key="retries")
                retries = 0
            delay = self.duration(raw, "retry_delay", where)
            return RetryPolicy(attempts=retries + 1, delay=1.0 if delay is None else delay)
        if "retries" in raw or "retry_delay" in raw:
            self.problem("give retry = { ... } or retries/retry_delay, not both", step=where,
                         key="retry")
        table = raw["retry"]
        if not isinstance(table, dict):
            self.problem("retry must be a table", step=where, key="retry",
                         hint='e.g. retry = { attempts = 5, delay = "1s", '
                         'backoff = "exponential" }')
            return RetryPolicy()
        for key in table:
            if key not in RETRY_FIELDS:
                self.problem(f"unknown field {key!r} in retry", step=where, key="retry",
                             hint=did_you_mean(key, RETRY_FIELDS)
                             or f"retry takes {', '.join(sorted(RETRY_FIELDS))}")
        attempts = table.get("attempts", 3)
        if not isinstance(attempts, int) or isinstance(attempts, bool) or attempts < 1:
            self.problem("retry.attempts must be a whole number, 1 or more (the first try "
                         "counts)", step=where, key="retry")
            attempts = 1
        backoff = table.get("backoff", "fixed")
        if backoff not in ("fixed", "exponential"):
            self.problem(f"retry.backoff {backoff!r} is not fixed or exponential", step=where,
                         key="retry", hint=did_you_mean(str(backoff), ("fixed", "exponential")))
            backoff = "fixed"
        factor = table.get("factor", 2.0)
        if not isinstance(factor, int | float) or isinstance(factor, bool) or factor < 1:
            self.problem("retry.factor must be a number, 1 or more", step=where, key="retry")
            factor = 2.0
        jitter = table.get("jitter", 0.0)
        if isinstance(jitter, bool):
            jitter = 0.5 if jitter else 0.0
        if (not isinstance(jitter, int | float) or isinstance(jitter, bool)
                or not 0 <= jitter <= 1):
            self.problem("retry.jitter must be true, false or a fraction from 0 to 1",
                         step=where, key="retry")
            jitter = 0.0
        on = table.get("on", [])
        if isinstance(on, str):
            on = [on]
        if not isinstance(on, list) or not all(isinstance(o, str) for o in on):
            self.problem("retry.on must be a list of error kinds", step=where, key="retry",
                         hint='e.g. on = ["timeout", "task_error", "ConnectionError"]')
            on = []
        delay = self.duration(table, "delay", where, inside="retry")
        max_delay = self.duration(table, "max_delay", where, inside="retry")
        return RetryPolicy(attempts=attempts, delay=1.0 if delay is None else delay,
                           backoff=str(backoff), factor=float(factor), max_delay=max_delay,
                           jitter=float(jitter), on=tuple(on))

    def _build_set(self, raw: dict[str, Any], base: dict[str, Any],
                   where: Where) -> SetStep | None:
        values = raw["values"]
        if not isinstance(values, dict) or not values:
            self.problem("'values' must be a table of name = value", step=where,
                         hint='write values = { total = "{{ a + b }}" }')
            return None
        for name in values:
            if not IDENTIFIER.match(name):
                self.problem(f"variable name {name!r} is not an identifier", step=where)
            if name in BUILTIN_VARIABLES:
                self.problem(f"{name!r} is a built-in name and cannot be set", step=where)
        expressions = self.templates(values, where, "values")
        return SetStep(**base, values=tuple(values.items()), value_expressions=expressions)

    def _build_if(self, raw: dict[str, Any], base: dict[str, Any],
                  where: Where) -> IfStep | None:
        condition = self.condition(raw["condition"], where, "condition")
        then = self.build_block(raw["then"], f"{where.path}.then")
        else_ = self.build_block(raw.get("else", []), f"{where.path}.else")
        if condition is None:
            return None
        return IfStep(**base, condition=condition, then=then, else_=else_)

    def _build_foreach(
        self, raw: dict[str, Any], base: dict[str, Any], where: Where
    ) -> ForeachStep | None:
        items_raw = raw["items"]
        if isinstance(items_raw, list):
            self.problem("items must be an expression that gives a list", step=where,
                         hint='write items = "{{ [1, 2, 3] }}" or items = "{{ files }}"')
            return None
        items = self.condition(items_raw, where, "items")
        item_var = raw.get("as", "item")
        index_var = raw.get("index_as")
        for name in (item_var, index_var):
            if name is not None and (not isinstance(name, str) or not IDENTIFIER.match(name)):
                self.problem(f"loop variable {name!r} is not an identifier", step=where)
        body = self.build_block(raw["body"], f"{where.path}.body")
        if items is None:
            return None
        return ForeachStep(**base, items=items, item_var=str(item_var),
                           index_var=None if index_var is None else str(index_var), body=body)

    def branches(self, raw: Any, where: Where, field_name: str, *,
                 with_when: bool) -> list[Branch] | None:
        """`[[steps.cases]]` / `[[steps.branches]]`: name, when (unless parallel), do."""
        allowed = CASE_FIELDS if with_when else CASE_FIELDS - {"when"}
        table = table_name(where.path)
        example = f"[[{table}.{field_name}]]"
        if not isinstance(raw, list) or not raw:
            self.problem(f"{field_name} must be a non-empty array of tables", step=where,
                         key=field_name,
                         hint=f"write {example} with " + ("when = \"...\" and " if with_when
                                                          else "") + "its steps under do")
            return None
        found: list[Branch] = []
        names: set[str] = set()
        ok = True
        for index, item in enumerate(raw):
            label = f"{field_name}[{index}]"
            at = (field_name, index)
            if not isinstance(item, dict):
                self.problem(f"{label} must be a table", step=where, at=at)
                ok = False
                continue
            misspelt = [key for key in item if key not in allowed]
            for key in misspelt:
                self.problem(f"unknown field {key!r} in {label}", step=where, key=key,
                             at=at, hint=did_you_mean(key, allowed)
                             or f"{field_name} take {', '.join(sorted(allowed))}")
            name = item.get("name", str(index + 1))
            if not isinstance(name, str) or not name:
                self.problem(f"{label}: name must be a non-empty string", step=where,
                             key="name", at=at)
                name = str(index + 1)
            if name in names:
                self.problem(f"{label}: another branch is already named {name!r}", step=where,
                             key="name", at=at, hint="give every branch its own name")
            names.add(name)
            when = None
            if with_when:
                if "when" not in item:
                    if not get_close_matches("when", misspelt, n=1):  # else: reported
                        self.problem(f"{label} needs when = \"<condition>\"", step=where,
                                     at=at, hint='e.g. when = "amount > 1000"')
                    ok = False
                else:
                    when = self.condition(item["when"], where, "when", at)
                    ok = ok and when is not None
            if "do" not in item:
                self.problem(f"{label} needs its steps under do", step=where, at=at,
                             hint=f"add [[{table}.{field_name}.do]] tables")
            steps = self.build_block(item.get("do", []), f"{where.path}.{label}.do")
            found.append(Branch(name, label, when, steps))
        return found if ok else None

    def _build_switch(self, raw: dict[str, Any], base: dict[str, Any],
                      where: Where) -> SwitchStep | None:
        cases = self.branches(raw["cases"], where, "cases", with_when=True)
        default = self.build_block(raw.get("default", []), f"{where.path}.default")
        if cases is None:
            return None
        return SwitchStep(**base, branches=(*cases, Branch("default", "default", None, default)))

    def _build_inclusive(self, raw: dict[str, Any], base: dict[str, Any],
                         where: Where) -> InclusiveStep | None:
        branches = self.branches(raw["branches"], where, "branches", with_when=True)
        return None if branches is None else InclusiveStep(**base, branches=tuple(branches))

    def _build_parallel(self, raw: dict[str, Any], base: dict[str, Any],
                        where: Where) -> ParallelStep | None:
        branches = self.branches(raw["branches"], where, "branches", with_when=False)
        limit = raw.get("max_concurrency")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            self.problem("max_concurrency must be a whole number, 1 or more", step=where,
                         key="max_concurrency")
            limit = None
        if branches is None:
            return None
        return ParallelStep(**base, branches=tuple(branches), max_concurrency=limit)

    def _build_while(self, raw: dict[str, Any], base: dict[str, Any],
                     where: Where) -> WhileStep | None:
        condition = self.condition(raw["condition"], where, "condition")
        limit = raw["max_iterations"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            self.problem("max_iterations must be a whole number, 1 or more", step=where,
                         key="max_iterations", hint="it bounds the loop: max_iterations = 100")
            limit = 1
        index_var = raw.get("index_as")
        if index_var is not None and (not isinstance(index_var, str)
                                      or not IDENTIFIER.match(index_var)):
            self.problem(f"loop variable {index_var!r} is not an identifier", step=where,
                         key="index_as")
            index_var = None
        body = self.build_block(raw["body"], f"{where.path}.body")
        if condition is None:
            return None
        return WhileStep(**base, condition=condition, max_iterations=limit,
                         index_var=index_var, body=body)

    def _build_scope(self, raw: dict[str, Any], base: dict[str, Any],
                     where: Where) -> ScopeStep | None:
        error_as = raw.get("error_as", "error")
        if (not isinstance(error_as, str) or not IDENTIFIER.match(error_as)
                or error_as in BUILTIN_VARIABLES):
            self.problem(f"error_as {error_as!r} is not a usable variable name", step=where,
                         key="error_as", hint='e.g. error_as = "failure"')
            error_as = "error"
        body = self.build_block(raw["do"], f"{where.path}.do")
        catch = (self.build_block(raw["catch"], f"{where.path}.catch")
                 if "catch" in raw else None)
        final = self.build_block(raw.get("finally", []), f"{where.path}.finally")
        return ScopeStep(**base, body=body, catch=catch, finally_=final, error_as=error_as)

    def _build_call(self, raw: dict[str, Any], base: dict[str, Any],
                    where: Where) -> CallStep | None:
        ref = raw["file"]
        params = raw.get("params", {})
        if not isinstance(params, dict):
            self.problem("params must be a table of name = value", step=where, key="params",
                         hint='e.g. params = { order = "{{ order }}" }')
            return None
        expressions = self.templates(params, where, "params")
        if not isinstance(ref, str) or not ref:
            self.problem("file must be the path of a definition file", step=where, key="file")
            return None
        child = self.children.get(ref)
        if child is None:
            try:
                text, child_file, source = self.children_source.read(ref)
                child = self.parse_child(text, child_file, children=source)
            except ValueError as exc:
                self.problem(f"call: {exc}", step=where, key="file",
                             hint="file is relative to this definition's directory")
                return None
            except DefinitionError as exc:
                self.problem(f"call: {ref} is not valid: {exc.problems[0].render()}"
                             + (f" (and {len(exc.problems) - 1} more)"
                                if len(exc.problems) > 1 else ""),
                             step=where, key="file", hint=f"run: procctl validate {ref}")
                return None
            self.children[ref] = child
        declared = {spec.name: spec for spec in child.params}
        for name in params:
            if name not in declared:
                self.problem(f"call: {ref} has no param {name!r}", step=where, key="params",
                             hint=did_you_mean(name, declared)
                             or f"it takes {', '.join(declared) or 'no params'}")
        for spec in child.params:
            if spec.required and not spec.has_default and spec.name not in params:
                self.problem(f"call: {ref} needs param {spec.name!r}", step=where,
                             key="params", hint=f"add it: params = {{ {spec.name} = ... }}")
        return CallStep(**base, file=ref, child=child, params=params,
                        param_expressions=expressions)

    def _build_intermediate_return(self, raw: dict[str, Any], base: dict[str, Any],
                                   where: Where) -> IntermediateReturnStep:
        value = raw["value"]
        return IntermediateReturnStep(**base, value=value,
                                      value_expressions=self.templates(value, where, "value"))

    def _build_return(self, raw: dict[str, Any], base: dict[str, Any],
                      where: Where) -> ReturnStep:
        value = raw.get("value")
        expressions = self.templates(value, where, "value")
        return ReturnStep(**base, value=value, value_expressions=expressions)

    def _build_throw(self, raw: dict[str, Any], base: dict[str, Any],
                     where: Where) -> ThrowStep | None:
        message = raw["message"]
        if not isinstance(message, str):
            self.problem("message must be a string", step=where)
            return None
        expressions = self.templates(message, where, "message")
        if not expressions:
            return None
        return ThrowStep(**base, message=expressions[0])

    def _build_checkpoint(
        self, raw: dict[str, Any], base: dict[str, Any], where: Where
    ) -> CheckpointStep | None:
        correlation = None
        if "correlation_id" in raw:
            found = self.templates(str(raw["correlation_id"]), where, "correlation_id")
            correlation = found[0] if found else None
        ttl = None
        if "ttl" in raw:
            try:
                ttl = parse_duration(raw["ttl"], number_unit="m")  # Frends: minutes
            except ValueError as exc:
                self.problem(f"ttl: {exc}", step=where, key="ttl")
        keep_going = raw.get("continue", False)
        if not isinstance(keep_going, bool):
            self.problem("continue must be true or false", step=where, key="continue")
            keep_going = False
        resume_at = self.moment(raw, "resume_at", where) if "resume_at" in raw else None
        if "resume_at" in raw and "resume_after" in raw:
            self.problem("give resume_after or resume_at, not both", step=where,
                         key="resume_at")
        on_expire, payload = self.expire_policy(raw.get("on_expire", "fail"), where)
        expects = self.expects(raw, where)
        if expects is not None and on_expire == "resume":
            unfit = payload_problem(expects, payload)
            if unfit is not None:
                self.problem(f"on_expire: its resume {unfit}", step=where, key="on_expire",
                             hint="the payload on_expire resumes with must fit expects too")
        commit = self.build_block(raw.get("commit", []), f"{where.path}.commit")
        recover = self.build_block(raw.get("recover", []), f"{where.path}.recover")
        return CheckpointStep(
            **base, correlation_id=correlation, ttl=ttl, continue_=keep_going, commit=commit,
            recover=recover, resume_after=self.duration(raw, "resume_after", where),
            resume_at=resume_at, on_expire=on_expire, expire_payload=payload,
            expects=expects)

    def expects(self, raw: dict[str, Any], where: Where) -> tuple[PayloadField, ...] | None:
        """A checkpoint's `expects`: the fields the payload that resumes it must carry."""
        if "expects" not in raw:
            return None
        fields, problems = parse_expects(raw["expects"])
        for message, hint in problems:
            self.problem(message, step=where, key="expects", hint=hint)
        return None if problems else fields

    def moment(self, raw: dict[str, Any], key: str, where: Where) -> Expression | None:
        """A `resume_at` / `at` field: an expression, or a constant that must be an
        ISO-8601 date or date and time (a TOML date-time is one), checked here rather than
        when the step runs."""
        text = str(raw[key])
        found = self.templates(text, where, key)
        if "{{" not in text and "{%" not in text:
            try:
                datetime.fromisoformat(text)
            except ValueError:
                self.problem(f"{key}: {text!r} is not a date and time", step=where, key=key,
                             hint="use an ISO-8601 moment such as 2026-12-01T09:00:00Z, "
                                  "or an expression that gives one")
        return found[0] if found else None

    def expire_policy(self, raw: Any, where: Where) -> tuple[str, Any]:
        if raw == "fail":
            return "fail", None
        if isinstance(raw, dict) and set(raw) == {"resume"}:
            return "resume", raw["resume"]
        self.problem("on_expire must be \"fail\" or a table { resume = PAYLOAD }", step=where,
                     key="on_expire",
                     hint="e.g. on_expire = { resume = { approved = false } }")
        return "fail", None

    def _build_scheduled_resume(
        self, raw: dict[str, Any], base: dict[str, Any], where: Where
    ) -> ScheduledResumeStep | None:
        if ("after" in raw) == ("at" in raw):
            self.problem("scheduled_resume needs exactly one of 'after' or 'at'", step=where,
                         hint='e.g. after = "5s"')
            return None
        at = self.moment(raw, "at", where) if "at" in raw else None
        limit = raw.get("max_iterations")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)
                                  or limit < 1):
            self.problem("max_iterations must be a whole number, 1 or more", step=where,
                         key="max_iterations")
            limit = None
        return ScheduledResumeStep(**base, after=self.duration(raw, "after", where), at=at,
                                   max_iterations=limit)

    def _build_signal(self, raw: dict[str, Any], base: dict[str, Any],
                      where: Where) -> SignalStep | None:
        found = self.templates(str(raw["correlation_id"]), where, "correlation_id")
        payload = raw.get("payload", {})
        expressions = self.templates(payload, where, "payload")
        signal_id = None
        if "signal_id" in raw:
            ids = self.templates(str(raw["signal_id"]), where, "signal_id")
            signal_id = ids[0] if ids else None
        if not found:
            return None
        return SignalStep(**base, correlation_id=found[0], payload=payload,
                          payload_expressions=expressions, signal_id=signal_id)
