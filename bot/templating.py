"""Rendering the dealership's templates (scripts) and marketing's (campaigns) safely.

A template is text typed in the console by someone who is not a programmer, or by someone
curious: it may loop 7000 × 7000 times, build a 50 MB string, or ask for an owner's phone.
So every template renders here, in a sandbox that

* sees only a whitelisted context: :class:`Fields` records (an owner's name and language, a
  car's model and plate…), never an ORM row, so ``customer.phone`` is simply not there;
* counts its steps (loop turns, calls, filters, what it writes) and stops at
  :data:`MAX_STEPS` or after :data:`MAX_SECONDS`;
* refuses to build a value bigger than :data:`MAX_VALUE` characters or items, checked
  before the big operations (``*``, ``+``, ``~``, ``center``, ``replace``, ``join``…);
* stops writing at a cap (:data:`OUTPUT_CAP`, Telegram's 4096, for campaigns).

Going over any of these raises :class:`TemplateOverBudget` (a ``TemplateError``), whose
message says what went wrong and what to do. Callers on the event loop render with
:func:`render_off_loop` so even a template at its budget never stalls the bot.
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from itertools import islice
from typing import Any, TypeVar

from jinja2 import StrictUndefined, Template, TemplateError, nodes
from jinja2.runtime import Context, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

OUTPUT_CAP = 4096  # Telegram's limit for one message
RUNAWAY_CAP = 65_536  # no render writes more than this, whatever the caller's cap
RUNAWAY_SLACK = 1024  # blank lines and spaces around a message, stripped after rendering
MAX_STEPS = 20_000
MAX_SECONDS = 0.5  # a safety net under the step count (real time, not business time)
MAX_VALUE = 16_384  # characters or items in one value a template builds
MAX_INT_BITS = 4096
CHARGE = 64  # characters (or items) written or handled per step

T = TypeVar("T")


class TemplateOverBudget(TemplateError):
    """A template that does too much; ``reason`` is steps, time, value, output or depth."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _over(reason: str, cap: int = 0) -> TemplateOverBudget:
    messages = {
        "steps": f"the template takes more than {MAX_STEPS} steps to render: a loop runs "
                 "too long; loop over fewer items",
        "time": f"the template takes more than {MAX_SECONDS:g} s to render; simplify it",
        "value": f"the template builds a text or list of more than {MAX_VALUE} characters "
                 "or items; make it smaller",
        "output": f"the message is longer than {cap} characters once rendered "
                  "(Telegram takes 4096); shorten it",
        "depth": "the template nests too deep (a macro or include calling itself?)",
    }
    return TemplateOverBudget(reason, messages[reason])


class Budget:
    """What one render may still spend."""

    def __init__(self) -> None:
        self.steps = 0
        self.deadline = time.monotonic() + MAX_SECONDS

    def charge(self, steps: int) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise _over("steps")
        if time.monotonic() > self.deadline:
            raise _over("time")


_BUDGET: ContextVar[Budget | None] = ContextVar("carebot_template_budget", default=None)


def _charge(steps: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.charge(steps)


def size_of(value: Any, limit: int = MAX_VALUE) -> int:
    """Characters and items in ``value``, nested values included; stops counting once over
    ``limit`` (so a list holding one long text 10,000 times costs no more to measure)."""
    total = 0
    todo = [value]
    while todo and total <= limit:
        item = todo.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            todo.extend(islice(item, limit))
        elif isinstance(item, dict):
            total += len(item)
            todo.extend(islice(item.keys(), limit))
            todo.extend(islice(item.values(), limit))
        elif isinstance(item, int) and not isinstance(item, bool):
            total += 1 + item.bit_length() // 64
        else:
            total += 1
    return total


def _limit_value(value: T) -> T:
    size = size_of(value)
    if size > MAX_VALUE:
        raise _over("value")
    _charge(size // CHARGE)
    return value


def _estimate(size: int) -> None:
    if size > MAX_VALUE:
        raise _over("value")


# --------------------------------------------------------------------------- the record


class Fields(Mapping[str, Any]):
    """A record as a template sees it: only the fields named, as plain values.

    Templates read ``customer.name``; a field not given (``customer.phone``) is undefined and
    the render fails saying which fields there are."""

    def __init__(self, label: str, values: Mapping[str, Any]) -> None:
        self._label = label  # no public attribute: it would shadow a field of that name
        self._values = dict(values)

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __str__(self) -> str:
        return f"{self._label}({', '.join(self._values)})"


class Undefined(StrictUndefined):
    """StrictUndefined, saying plainly when a field is not given to templates."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, Fields):
            label = owner._label
            return (f"{label}.{self._undefined_name} is not available to templates; "
                    f"{label} has only: {', '.join(owner) or 'nothing'}")
        return str(super()._undefined_message)


# --------------------------------------------------------------------------- the sandbox

_PERCENT = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACES = re.compile(r"\{[^{}]*:([^{}]*)(\{?)")


def _check_format(fmt: Any) -> None:
    """A format string must not ask for a huge width or precision (``%50000000s``)."""
    if not isinstance(fmt, str):
        return
    for match in _PERCENT.finditer(fmt):
        for width in match.groups():
            if width == "*" or (width and int(width) > MAX_VALUE):
                raise _over("value")
    for match in _BRACES.finditer(fmt):
        if match.group(2) or any(int(d) > MAX_VALUE for d in re.findall(r"\d+", match.group(1))):
            raise _over("value")


def _replace_size(text: Any, old: Any, new: Any, count: Any = -1) -> int:
    if not any(all(isinstance(x, kind) for x in (text, old, new)) for kind in (str, bytes)):
        return 0
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return len(text) + found * max(len(new) - len(old), 0)


def _materialize(items: Any) -> Any:
    """A join's items as a list (a generator is read at most ``MAX_VALUE`` items far)."""
    if isinstance(items, (str, list, tuple, dict, set, frozenset)):
        return items
    out = list(islice(iter(items), MAX_VALUE + 1))
    _estimate(len(out))
    return out


def _check_str_method(owner: Any, name: str, args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Methods of a text that can build a much longer one; returns the args to call with."""
    first = args[0] if args else None
    if name in ("center", "ljust", "rjust", "zfill"):
        width = first if first is not None else kwargs.get("width", 0)
        _estimate(width if isinstance(width, int) else 0)
    elif name == "expandtabs":
        tab = first if first is not None else kwargs.get("tabsize", 8)
        _estimate(len(owner) + owner.count("\t") * (tab if isinstance(tab, int) else 0))
    elif name == "replace" and len(args) >= 2:
        _estimate(_replace_size(owner, *args[:3]))
    elif name == "join" and args:
        items = _materialize(first)
        _estimate(size_of(items) + len(owner) * size_of(items, 0))
        return (items, *args[1:])
    elif name in ("format", "format_map"):
        _check_format(owner)
    elif name == "translate" and isinstance(first, dict) and first:
        _estimate(len(owner) * max(size_of(v) for v in first.values()))
    return args


def _check_binop(operator: str, left: Any, right: Any) -> None:
    sized = (str, bytes, list, tuple)
    if operator == "*":
        for seq, n in ((left, right), (right, left)):
            if isinstance(seq, sized) and isinstance(n, int):
                _estimate(size_of(seq) * max(n, 0))
        if isinstance(left, int) and isinstance(right, int) \
                and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise _over("value")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1 \
                and abs(left).bit_length() * right > MAX_INT_BITS:
            raise _over("value")
    elif operator == "+":
        if isinstance(left, sized) and isinstance(right, sized):
            _estimate(size_of(left) + size_of(right))
    elif operator == "%":
        _check_format(left)


_FILTER_ARGS: dict[str, tuple[int, str, int]] = {
    # filter: (position of the count after the value, its keyword, its default)
    "center": (1, "width", 80), "batch": (1, "linecount", 0), "slice": (1, "slices", 0),
}


def _check_filter(name: str, values: list[Any], kwargs: dict[str, Any]) -> None:
    """The filters whose result can be far bigger than what they are given."""
    text = values[0] if values else ""
    if name in _FILTER_ARGS:
        pos, key, default = _FILTER_ARGS[name]
        count = values[pos] if len(values) > pos else kwargs.get(key, default)
        _estimate(count if isinstance(count, int) else 0)
    elif name == "indent":
        width = values[1] if len(values) > 1 else kwargs.get("width", 4)
        width = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        _estimate(len(str(text)) + (str(text).count("\n") + 1) * width)
    elif name == "replace" and len(values) >= 3:
        _estimate(_replace_size(str(text), *values[1:4]))
    elif name == "wordwrap":
        width = values[1] if len(values) > 1 else kwargs.get("width", 79)
        wrap = values[3] if len(values) > 3 else kwargs.get("wrapstring") or "\n"
        width = width if isinstance(width, int) and width > 0 else 1
        _estimate(len(str(text)) + (len(str(text)) // width + 1) * len(str(wrap)))
    elif name == "join" and values:
        items = values[0] = _materialize(text)
        sep = values[1] if len(values) > 1 else kwargs.get("d", "")
        _estimate(size_of(items) + len(str(sep)) * size_of(items, 0))
    elif name == "format":
        _check_format(text)


def _guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    passes_arg = getattr(fn, "jinja_pass_arg", None) is not None

    @functools.wraps(fn)  # keeps jinja_pass_arg (context, eval context, environment)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        head, values = (args[:1], list(args[1:])) if passes_arg else ((), list(args))
        _check_filter(name, values, kwargs)
        _charge(1 + size_of(values) // CHARGE)
        return _limit_value(fn(*head, *values, **kwargs))

    return guarded


class _Counted(NodeTransformer):
    """Rewrites a parsed template so that every loop turn and every ``~`` is counted."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        literal = sum(len(n.data) for n in node.find_all(nodes.TemplateData)) + sum(
            len(n.value) for n in node.find_all(nodes.Const) if isinstance(n.value, str))
        node.iter = nodes.Call(nodes.EnvironmentAttribute("counted_loop"),
                               [node.iter, nodes.Const(1 + literal // CHARGE)], [], None, None,
                               lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Call(nodes.EnvironmentAttribute("counted_concat"),
                          [nodes.List(list(node.nodes), lineno=node.lineno)], [], None, None,
                          lineno=node.lineno)


class LimitedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every template renders in (see the module's docstring)."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        options.setdefault("autoescape", True)
        options.setdefault("undefined", Undefined)
        options.setdefault("trim_blocks", True)
        options.setdefault("lstrip_blocks", True)
        super().__init__(finalize=self._written, **options)
        self.globals.pop("lipsum", None)  # writes any amount of text on request
        self.globals["range"] = self._range
        self.filters = {name: _guard_filter(name, fn) for name, fn in self.filters.items()}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = _Counted().visit(super()._parse(source, name, filename))
        tree.set_environment(self)
        return tree  # type: ignore[no-any-return]

    def _written(self, value: Any) -> Any:
        _charge(1 + size_of(value) // CHARGE)
        return value

    @staticmethod
    def _range(*args: int) -> range:
        numbers = range(*args)
        _estimate(len(numbers))
        return numbers

    def counted_loop(self, iterable: Iterable[T], weight: int) -> Iterator[T]:
        """A loop's items, each turn charged (its literal text included)."""
        for item in iterable:
            _charge(weight)
            yield item

    def counted_concat(self, items: list[Any]) -> str:
        _estimate(size_of(items))
        return _limit_value(markup_join(items))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return _limit_value(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Every call a template makes (functions, methods, macros): counted, checked."""
        target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        if isinstance(owner, (str, bytes)):
            args = _check_str_method(owner, getattr(target, "__name__", ""), args, kwargs)
        elif isinstance(owner, int) and getattr(target, "__name__", "") == "to_bytes":
            _estimate(args[0] if args and isinstance(args[0], int) else kwargs.get("length", 1))
        _charge(1 + size_of([args, kwargs]) // CHARGE)
        return _limit_value(super().call(context, obj, *args, **kwargs))


# --------------------------------------------------------------------------- rendering


def render(template: Template, context: Mapping[str, Any], *,
           max_chars: int = OUTPUT_CAP) -> str:
    """The template's text (stripped) within the budget, or :class:`TemplateOverBudget`.
    ``max_chars``: the longest message accepted (never more than :data:`RUNAWAY_CAP`)."""
    cap = min(max_chars, RUNAWAY_CAP)
    token = _BUDGET.set(Budget())
    try:
        parts: list[str] = []
        written = 0
        for part in template.generate(**context):
            written += len(part)
            if written > cap + RUNAWAY_SLACK:
                raise _over("output", cap)
            parts.append(part)
        text = "".join(parts).strip()
    except RecursionError:
        raise _over("depth") from None
    except MemoryError:
        raise _over("value") from None
    finally:
        _BUDGET.reset(token)
    if len(text) > cap:
        raise _over("output", cap)
    return text


async def render_off_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a render (or a check that renders) in a worker thread: the event loop, /healthz
    and the webhook go on meanwhile."""
    return await asyncio.to_thread(fn, *args, **kwargs)
