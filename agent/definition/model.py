"""The frozen definition model. Built once by the loader; after that, code trusts it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from procctl.agent.errors import Problem
from procctl.agent.expressions import Expression


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: str  # str, int, float, bool, list, dict, any
    required: bool
    default: Any = None
    has_default: bool = False
    description: str = ""


#: The `kind` of every step, as written in a definition file (in the order the
#: hints list them). Each concrete step class narrows `kind` to its own name.
StepKindName = Literal[
    "task", "set", "if", "switch", "inclusive", "parallel", "foreach", "while", "scope",
    "call", "intermediate_return", "return", "throw", "checkpoint", "scheduled_resume",
    "signal",
]
STEP_KINDS: tuple[StepKindName, ...] = get_args(StepKindName)


@dataclass(frozen=True)
class Step:
    """Fields every step has. `path` is like `steps[2].then[0]`; `line` is 1-based."""

    id: str
    kind: StepKindName
    path: str
    line: int | None

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        """The nested blocks of this step, by field name (empty for simple steps)."""
        return ()

    def reads(self) -> frozenset[str]:
        """Variables this step's own expressions read (not its nested blocks)."""
        return frozenset()

    def sets(self) -> frozenset[str]:
        """Variables this step assigns for the steps after it."""
        return frozenset()

    def expressions(self) -> tuple[Expression, ...]:
        return ()


def steps_within(block: Iterable[AnyStep]) -> list[AnyStep]:
    """The steps of a block and every step nested in them, depth first, in file order."""
    found: list[AnyStep] = []
    for step in block:
        found.append(step)
        for _, inner in step.blocks():
            found.extend(steps_within(inner))
    return found


def _reads(expressions: tuple[Expression, ...]) -> frozenset[str]:
    names: set[str] = set()
    for expression in expressions:
        names |= expression.variables
    return frozenset(names)


@dataclass(frozen=True)
class RetryPolicy:
    """How a task step tries again: `attempts` in all (1 = no retry), the wait before
    attempt n+1 (`delay`, times `factor`**(n-1) for exponential backoff, capped at
    `max_delay`, with up to `jitter` of it added at random), and which errors retry:
    `on` lists error kinds ("timeout", "task_error") or exception class names; empty
    means every error."""

    attempts: int = 1
    delay: float = 1.0
    backoff: str = "fixed"  # fixed | exponential
    factor: float = 2.0
    max_delay: float | None = None
    jitter: float = 0.0
    on: tuple[str, ...] = ()

    def wait_before(self, attempt: int, rand: float) -> float:
        """Seconds to wait before attempt `attempt + 1`; `rand` is in [0, 1)."""
        wait = self.delay
        if self.backoff == "exponential":
            wait = self.delay * self.factor ** (attempt - 1)
        if self.max_delay is not None:
            wait = min(wait, self.max_delay)
        return wait + wait * self.jitter * rand

    def retries(self, kinds: tuple[str, ...]) -> bool:
        """Whether an error of these kinds (most specific first) is worth another try."""
        return not self.on or any(kind in self.on for kind in kinds)


@dataclass(frozen=True)
class TaskStep(Step):
    kind: Literal["task"]
    task: str
    args: tuple[tuple[str, Any], ...]  # raw field values (templates inside)
    arg_expressions: tuple[Expression, ...]
    timeout: float | None
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def expressions(self) -> tuple[Expression, ...]:
        return self.arg_expressions

    def reads(self) -> frozenset[str]:
        return _reads(self.arg_expressions)


@dataclass(frozen=True)
class SetStep(Step):
    kind: Literal["set"]
    values: tuple[tuple[str, Any], ...]
    value_expressions: tuple[Expression, ...]

    def expressions(self) -> tuple[Expression, ...]:
        return self.value_expressions

    def reads(self) -> frozenset[str]:
        return _reads(self.value_expressions)

    def sets(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.values)


@dataclass(frozen=True)
class IfStep(Step):
    kind: Literal["if"]
    condition: Expression
    then: tuple[AnyStep, ...]
    else_: tuple[AnyStep, ...] = field(default=())

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        return (("then", self.then), ("else", self.else_))

    def expressions(self) -> tuple[Expression, ...]:
        return (self.condition,)

    def reads(self) -> frozenset[str]:
        return self.condition.variables


@dataclass(frozen=True)
class ForeachStep(Step):
    kind: Literal["foreach"]
    items: Expression
    item_var: str
    index_var: str | None
    body: tuple[AnyStep, ...]

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        return (("body", self.body),)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.items,)

    def reads(self) -> frozenset[str]:
        return self.items.variables

    def loop_vars(self) -> frozenset[str]:
        return frozenset(v for v in (self.item_var, self.index_var) if v)


@dataclass(frozen=True)
class Branch:
    """One branch of a switch, inclusive or parallel step: its name, its condition
    (none for parallel branches) and its steps. `block` is its name in positions."""

    name: str
    block: str
    when: Expression | None
    steps: tuple[AnyStep, ...]


@dataclass(frozen=True)
class _BranchingStep(Step):
    branches: tuple[Branch, ...]

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        return tuple((branch.block, branch.steps) for branch in self.branches)

    def expressions(self) -> tuple[Expression, ...]:
        return tuple(b.when for b in self.branches if b.when is not None)

    def reads(self) -> frozenset[str]:
        return _reads(self.expressions())

    def branch(self, block: str) -> Branch:
        for branch in self.branches:
            if branch.block == block:
                return branch
        raise KeyError(block)


@dataclass(frozen=True)
class SwitchStep(_BranchingStep):
    """The first case whose `when` holds runs; else `default` (the branch with no
    condition, always last)."""

    kind: Literal["switch"]


@dataclass(frozen=True)
class InclusiveStep(_BranchingStep):
    """Every branch whose `when` holds (evaluated at the start) runs, in order."""

    kind: Literal["inclusive"]


@dataclass(frozen=True)
class ParallelStep(_BranchingStep):
    """All branches run at once, at most `max_concurrency` together; the join waits."""

    kind: Literal["parallel"]
    max_concurrency: int | None = None


@dataclass(frozen=True)
class WhileStep(Step):
    """Run `body` while `condition` holds, at most `max_iterations` times."""

    kind: Literal["while"]
    condition: Expression
    max_iterations: int
    index_var: str | None
    body: tuple[AnyStep, ...]

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        return (("body", self.body),)

    def expressions(self) -> tuple[Expression, ...]:
        return (self.condition,)

    def reads(self) -> frozenset[str]:
        return self.condition.variables

    def loop_vars(self) -> frozenset[str]:
        return frozenset({self.index_var} if self.index_var else ())


@dataclass(frozen=True)
class ScopeStep(Step):
    """Run `do`; on a failure run `catch` with the error in `error_as`; always run
    `finally` (after `do` or `catch`)."""

    kind: Literal["scope"]
    body: tuple[AnyStep, ...]
    catch: tuple[AnyStep, ...] | None
    finally_: tuple[AnyStep, ...]
    error_as: str

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        return (("do", self.body), ("catch", self.catch or ()), ("finally", self.finally_))


@dataclass(frozen=True)
class CallStep(Step):
    """Run another definition (`file`, pinned with this one) as a child instance."""

    kind: Literal["call"]
    file: str
    child: Definition
    params: Any
    param_expressions: tuple[Expression, ...]

    def expressions(self) -> tuple[Expression, ...]:
        return self.param_expressions

    def reads(self) -> frozenset[str]:
        return _reads(self.param_expressions)


@dataclass(frozen=True)
class _ValueStep(Step):
    value: Any  # the raw field (templates inside)
    value_expressions: tuple[Expression, ...]

    def expressions(self) -> tuple[Expression, ...]:
        return self.value_expressions

    def reads(self) -> frozenset[str]:
        return _reads(self.value_expressions)


@dataclass(frozen=True)
class IntermediateReturnStep(_ValueStep):
    """Hand a value to whoever waits on `run --wait`; the process goes on."""

    kind: Literal["intermediate_return"]


@dataclass(frozen=True)
class ReturnStep(_ValueStep):
    """End the innermost body that takes a value, or the process, with `value`."""

    kind: Literal["return"]


@dataclass(frozen=True)
class ThrowStep(Step):
    kind: Literal["throw"]
    message: Expression

    def expressions(self) -> tuple[Expression, ...]:
        return (self.message,)

    def reads(self) -> frozenset[str]:
        return self.message.variables


@dataclass(frozen=True)
class Definition:
    name: str
    version: str | None
    description: str
    params: tuple[ParamSpec, ...]
    steps: tuple[AnyStep, ...]
    source: str
    sha256: str
    file: str | None
    #: what recovery does with an instance interrupted before its first checkpoint:
    #: "fail" (the default), "restart" (from the beginning, same params) or "hold"
    on_crash: str = "fail"
    #: the pool of agents that may run it (a definition whose `exec`, files or plugins
    #: exist on some hosts only); None: any agent
    pool: str | None = None
    #: checkpoint (and call) step id -> what a snapshot there stores (computed at load)
    liveness: dict[str, Liveness] = field(default_factory=dict, compare=False)
    #: the definitions `call` steps run, by the file name as written (pinned with this)
    children: dict[str, Definition] = field(default_factory=dict, compare=False)
    #: findings that do not stop a run (a variable unset on some path, dead steps)
    warnings: tuple[Problem, ...] = field(default=(), compare=False)

    def all_steps(self) -> list[AnyStep]:
        """Every step, depth first, in file order."""
        return steps_within(self.steps)


@dataclass(frozen=True)
class PayloadField:
    """A field of the payload a checkpoint waits for: declared in its `expects` (a param
    type, `optional` for `"str?"`), or found in what later steps read (`declared` False,
    type "any": nothing says what it must be)."""

    name: str
    type: str
    optional: bool = False
    declared: bool = True


@dataclass(frozen=True)
class CheckpointStep(Step):
    """Save a snapshot; pause unless `continue_`. `ttl` and `resume_after` are seconds."""

    kind: Literal["checkpoint"]
    correlation_id: Expression | None
    ttl: float | None
    continue_: bool
    commit: tuple[AnyStep, ...]
    recover: tuple[AnyStep, ...]
    resume_after: float | None
    resume_at: Expression | None
    on_expire: str  # "fail" | "resume"
    expire_payload: Any = None
    #: the payload a signal must carry (`expects = { approved = "bool" }`); None: not
    #: declared (any payload is taken)
    expects: tuple[PayloadField, ...] | None = None

    def blocks(self) -> tuple[tuple[str, tuple[AnyStep, ...]], ...]:
        return (("commit", self.commit), ("recover", self.recover))

    def expressions(self) -> tuple[Expression, ...]:
        return tuple(e for e in (self.correlation_id, self.resume_at) if e is not None)

    def reads(self) -> frozenset[str]:
        return _reads(self.expressions())


@dataclass(frozen=True)
class ScheduledResumeStep(Step):
    """Pause now; resume from the last checkpoint after `after` seconds or at `at`."""

    kind: Literal["scheduled_resume"]
    after: float | None
    at: Expression | None
    max_iterations: int | None

    def expressions(self) -> tuple[Expression, ...]:
        return () if self.at is None else (self.at,)

    def reads(self) -> frozenset[str]:
        return _reads(self.expressions())


@dataclass(frozen=True)
class SignalStep(Step):
    """Resume another paused instance by correlation ID, with a payload."""

    kind: Literal["signal"]
    correlation_id: Expression
    payload: Any
    payload_expressions: tuple[Expression, ...]
    signal_id: Expression | None

    def expressions(self) -> tuple[Expression, ...]:
        extra = () if self.signal_id is None else (self.signal_id,)
        return (self.correlation_id, *self.payload_expressions, *extra)

    def reads(self) -> frozenset[str]:
        return _reads(self.expressions())


@dataclass(frozen=True)
class Liveness:
    """What a checkpoint's snapshot keeps: variables later steps read, and the step
    results they read (`all_results` when some expression reads `results` by a
    computed key)."""

    variables: frozenset[str]
    results: frozenset[str]
    all_results: bool


#: Every concrete step kind: the closed set that each view of a definition (builders,
#: checks, liveness, graph, tree, engine) dispatches on. A `match` over it ending in
#: `case _: assert_never(step)` makes strict mypy name any kind a view forgot, so a new
#: kind added here fails type-checking until every view handles it.
AnyStep = (
    TaskStep
    | SetStep
    | IfStep
    | ForeachStep
    | SwitchStep
    | InclusiveStep
    | ParallelStep
    | WhileStep
    | ScopeStep
    | CallStep
    | IntermediateReturnStep
    | ReturnStep
    | ThrowStep
    | CheckpointStep
    | ScheduledResumeStep
    | SignalStep
)
