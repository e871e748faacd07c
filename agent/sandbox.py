"""The Jinja environment expressions run in: sandboxed, and bounded in time and size.

Built on Jinja2's ImmutableSandboxedEnvironment: no imports, no I/O, no private or
mutating attributes. On top of it, every place where compiled template code calls
back into the environment watches the evaluation's budget
(`agent/expression_limits.py`):

- calls, attribute and item reads, the operators `+ * % **`, every filter and test
  call `tick()`, the deadline; calls, filters and operators check the size of what
  they build (before building it where a width or a count decides it:
  `agent/expression_growth.py`);
- the code generator adds what Jinja does not call back for: a `tick()` at the top
  of every `{% for %}` body (and for each item a loop's `if` filters), a count of
  every piece of output (text in a `{% for %}` is produced without any call), a size
  check on `~`, and non-finite float constants written so that they compile
  (constant folding turns `'inf' | float` into a constant Jinja writes as `inf`).
"""

from __future__ import annotations

import math
import operator
import types
from collections.abc import Callable, Iterable, Iterator
from functools import update_wrapper, wraps
from itertools import chain
from typing import Any, TypeVar, cast

from jinja2 import Environment, StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import generate_lorem_ipsum
from markupsafe import EscapeFormatter, Markup

from procctl.agent import expression_growth as growth
from procctl.agent.expression_limits import (
    LimitExceeded,
    check_size,
    checked,
    count_output,
    max_size,
    size_of,
    tick,
)

T = TypeVar("T")

MAX_RANGE = 10_000
MAX_POWER_DIGITS = 4_300
_MAX_INT_BITS = MAX_POWER_DIGITS * 4  # a little above 4,300 decimal digits


def _is_tick(node: nodes.Node) -> bool:
    """`environment.tick` as a statement: written as a call to it (Jinja allows no
    node types of one's own, and templates cannot write this node)."""
    return (isinstance(node, nodes.ExprStmt) and isinstance(node.node, nodes.EnvironmentAttribute)
            and node.node.name == "tick")


class _BoundedCodeGenerator(CodeGenerator):
    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        if not (node.body and _is_tick(node.body[0])):
            node.body.insert(0, nodes.ExprStmt(nodes.EnvironmentAttribute("tick"),
                                               lineno=node.lineno))
            if node.test is not None:  # the items the test skips cost a tick too
                node.iter = nodes.Call(nodes.EnvironmentAttribute("ticking"), [node.iter],
                                       [], None, None, lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_ExprStmt(self, node: nodes.ExprStmt, frame: Frame) -> None:
        if _is_tick(node):
            self.writeline("environment.tick()", node)
        else:
            super().visit_ExprStmt(node, frame)

    def visit_Const(self, node: nodes.Const, frame: Frame) -> None:
        value = node.as_const(frame.eval_ctx)
        if isinstance(value, float) and not math.isfinite(value):
            self.write(f"float({str(value)!r})")  # float('inf'), float('-inf'), float('nan')
        else:
            super().visit_Const(node, frame)

    def _output_child_pre(self, node: nodes.Expr, frame: Frame,
                          finalize: CodeGenerator._FinalizeInfo) -> None:
        super()._output_child_pre(node, frame, finalize)
        self.write("environment.count_output(")

    def _output_child_post(self, node: nodes.Expr, frame: Frame,
                           finalize: CodeGenerator._FinalizeInfo) -> None:
        self.write(")")
        super()._output_child_post(node, frame, finalize)

    def _output_const_repr(self, group: Iterable[Any]) -> str:
        return f"environment.count_output({super()._output_const_repr(group)})"

    def _built(self, visit: Callable[[], None]) -> None:
        self.write("environment.built(")
        visit()
        self.write(")")

    # A list, tuple or table written in a template costs nothing per item, but
    # `[x, x]` in a loop doubles what its text would be: `built` sizes it.
    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._built(lambda: super(_BoundedCodeGenerator, self).visit_List(node, frame))

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._built(lambda: super(_BoundedCodeGenerator, self).visit_Dict(node, frame))

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":  # a target: `{% for a, b in ... %}`, `{% set a, b = ... %}`
            super().visit_Tuple(node, frame)
        else:
            self._built(lambda: super(_BoundedCodeGenerator, self).visit_Tuple(node, frame))

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.concat_parts(context.eval_ctx.autoescape, (")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


class _BoundedFormatter(SandboxedFormatter):
    """`str.format` whose fields are sized before they are formatted."""

    produced = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        tick()
        limit = max_size()
        check_size(self.produced + size_of(value, limit) + growth.spec_size(format_spec),
                   "format()")
        text = super().format_field(value, format_spec)
        self.produced += len(text)
        check_size(self.produced, "format()")
        return text


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


def _guard_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    # A filter that takes the environment or context first says so in jinja_pass_arg.
    skip = 1 if getattr(function, "jinja_pass_arg", None) is not None else 0
    what = f"the {name} filter"

    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        if name == "join" and len(args) > skip:
            args = (*args[:skip], list(args[skip]), *args[skip + 1:])
        elif name == "slice" and len(args) > skip + 1 and isinstance(args[skip + 1], int) \
                and args[skip + 1] > MAX_RANGE:
            raise LimitExceeded(f"slice() into more than {MAX_RANGE:,} parts")
        elif name == "sum" and isinstance(_argument(args, kwargs, skip + 2, "start"),
                                          list | tuple):
            return _sum_sequences(*args, **kwargs)
        estimate = growth.filter_size(name, args[skip:], kwargs)
        if estimate is not None:
            check_size(estimate, what)
        value = function(*args, **kwargs)
        return value if _handed_in(value, args, kwargs) else checked(value, what)

    return guarded


def _handed_in(value: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
               receiver: Any = None) -> bool:
    """Whether a call gave back one of its arguments, or an item of one (`default`,
    `first`, `dict.get`): nothing new was built, whatever its size."""
    if isinstance(value, int | float | bool) or value is None:
        return False  # small anyway
    for given in (receiver, *args, *kwargs.values()):
        if value is given:
            return True
        if isinstance(given, dict):
            given = given.values()
        if isinstance(given, list | tuple | type({}.values())) and any(
                value is item for item in given):
            return True
    return False


def _argument(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str) -> Any:
    return args[index] if len(args) > index else kwargs.get(name)


def _sum_sequences(environment: Environment, iterable: Iterable[Any],
                   attribute: str | int | None = None, start: Any = None) -> Any:
    """The sum filter from a list or tuple: Python's sum copies the total for every item
    (its time grows with the square of the items), this joins them once."""
    kind = type(start)
    parts = [start]
    pick = make_attrgetter(environment, attribute) if attribute is not None else None
    for item in iterable:
        tick()
        part = pick(item) if pick is not None else item
        if not isinstance(part, kind):
            raise TypeError(f"can only concatenate {kind.__name__} "
                            f"(not {type(part).__name__!r}) to {kind.__name__}")
        parts.append(part)
    limit = max_size()
    check_size(sum(size_of(part, limit) for part in parts), "the sum filter")
    return kind(chain.from_iterable(parts))


def _guard_test(function: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(function)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        return function(*args, **kwargs)

    return guarded


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise LimitExceeded(f"range() of more than {MAX_RANGE:,} items")
    return numbers


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20,
                    max: int = 100) -> str:
    check_size(n * max * 10, "lipsum()")
    return str(generate_lorem_ipsum(n, html, min, max))


class Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "%", "**"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        self.filters = {name: _guard_filter(name, function)
                        for name, function in self.filters.items()}
        tests = cast(dict[str, Callable[..., Any]], self.tests)
        self.tests = {name: _guard_test(function) for name, function in tests.items()}

    # -- what the generated code calls ----------------------------------------------

    tick = staticmethod(tick)
    count_output = staticmethod(count_output)

    @staticmethod
    def built(value: T) -> T:
        return checked(value, "the value")

    @staticmethod
    def ticking(items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            tick()
            yield item

    @staticmethod
    def concat_parts(autoescape: bool, parts: tuple[Any, ...]) -> str:
        limit = max_size()
        check_size(sum(size_of(part, limit) for part in parts), "the ~ operator")
        return markup_join(parts) if autoescape else str_join(parts)

    # -- the sandbox's hooks --------------------------------------------------------

    def call(__self, __context: Context, __obj: Any,
             *args: Any, **kwargs: Any) -> Any:
        tick()
        what = f"{getattr(__obj, '__name__', 'the call')}()"
        receiver = None
        if isinstance(__obj, types.BuiltinMethodType):
            receiver = __obj.__self__
            if __obj.__name__ == "join" and isinstance(receiver, str | bytes) and args:
                args = (list(args[0]), *args[1:])
            estimate = growth.method_size(receiver, __obj.__name__, args, kwargs)
            if estimate is not None:
                check_size(estimate, what)
        value = super().call(__context, __obj, *args, **kwargs)
        return value if _handed_in(value, args, kwargs, receiver) else checked(value, what)

    def getattr(self, obj: Any, attribute: str) -> Any:
        tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        tick()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator_: str, left: Any, right: Any) -> Any:
        tick()
        if operator_ == "**":
            if (isinstance(left, int) and isinstance(right, int) and right > 0
                    and abs(left) > 1 and right * abs(left).bit_length() > _MAX_INT_BITS):
                raise LimitExceeded(
                    f"the result of ** would have more than {MAX_POWER_DIGITS:,} digits")
            return operator.pow(left, right)
        if isinstance(left, int) and isinstance(right, int):
            if operator_ == "*" and left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                raise LimitExceeded(
                    f"the result of * would have more than {MAX_POWER_DIGITS:,} digits")
            return self.binop_table[operator_](left, right)
        limit = max_size()
        if operator_ == "*":
            for seq, count in ((left, right), (right, left)):
                if isinstance(seq, str | bytes | list | tuple) and isinstance(count, int):
                    check_size(size_of(seq, limit) * count, "the * operator")
        elif operator_ == "%" and isinstance(left, str | bytes):
            text = left if isinstance(left, str) else left.decode("latin-1")
            check_size(growth.printf_size(text, right), "the % operator")
        elif operator_ == "+" and isinstance(left, str | bytes | list | tuple):
            check_size(size_of(left, limit) + size_of(right, limit), "the + operator")
        # Other operands make numbers (or raise): nothing that grows.
        return self.binop_table[operator_](left, right)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """`str.format` and `format_map`, with a formatter that sizes every field."""
        if not (isinstance(value, types.MethodType | types.BuiltinMethodType)
                and value.__name__ in ("format", "format_map")
                and isinstance(value.__self__, str)):
            return None
        text: str = value.__self__
        by_map = value.__name__ == "format_map"
        formatter = (_BoundedEscapeFormatter(self, escape=text.escape)
                     if isinstance(text, Markup) else _BoundedFormatter(self))

        def bounded(*args: Any, **kwargs: Any) -> str:
            if by_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs = args[0]
                args = ()
            formatter.produced = 0
            return type(text)(formatter.vformat(text, args, kwargs))

        return update_wrapper(bounded, value)
