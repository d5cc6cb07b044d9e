"""The import graph of ``bot`` and ``db``, read from the sources (never imported): no cycle
among module-level imports, the layering rules below, and no import inside a function
without its reason.

Module-level imports are what runs when a module loads (``if TYPE_CHECKING:`` blocks are
left out: they never run). Imports inside functions run at call time; they are counted
apart, and each needs a comment saying why it is not at the top (a cycle that cannot be
removed, or a start-up cost), on its line or the line before its group. The layering rules
look at both kinds: a dependency made at call time is a dependency all the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "db")

# The domain: care's rules and records (tickets, conversations, surveys, owners, bookings,
# journeys, KPIs, consent, intake, campaigns, time). Telegram's handlers, the web and the
# CLI call it with plain values; it never imports them.
DOMAIN = ("bot.tickets", "bot.ticket_rules", "bot.ticket_stats", "bot.business_time",
          "bot.threads", "bot.threads_kpi", "bot.surveys", "bot.owners", "bot.bookings",
          "bot.booking_calendar", "bot.booking_desk", "bot.booking_news",
          "bot.journeys", "bot.periods", "bot.kpi", "bot.consent", "bot.intake",
          "bot.campaigns", "bot.schedule", "bot.clock", "bot.vin", "bot.phones")
DOMAIN_MAY_NOT = ("telegram", "bot.handlers", "bot.web", "bot.cli", "bot.app")
# db is below bot; its one use of bot is the migration's advisory lock (db.setup takes
# bot.locks' lock so that two instances starting together migrate once).
DB_MAY_IMPORT_FROM_BOT = {("db.setup", "bot.locks")}
# The wiring: bot.app builds everything, bot.web.server the web app. Only the entry points
# (the CLI, the sandbox) import them (the feature list is bot.features, which anyone may read).
WIRING_IMPORTERS = {
    "bot.app": {"bot.cli.core", "bot.sandbox.scene"},
    "bot.web.server": {"bot.app"},
}
# Import statements inside functions today, each with its reason: openpyxl in bot.intake
# (three), the sign-in module in bot.web.console.
MAX_IN_FUNCTIONS = 4


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the module imported when it is one of ours, else the dotted name imported
    line: int
    in_function: bool

    def where(self) -> str:
        return f"{path_of(self.source)}:{self.line}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for package in PACKAGES for p in sorted((ROOT / package)
                                                                          .rglob("*.py"))}


def path_of(module: str) -> str:
    return str(modules()[module].relative_to(ROOT))


def resolve(name: str) -> str:
    """The module of ours a dotted name lands in (the longest prefix that is one), or the
    name itself for anything else (the standard library, third-party packages)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules():
            return candidate
    return name


def _targets(node: ast.Import | ast.ImportFrom, module: str) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:  # relative: from the importing module's package
        package = module.split(".")
        if modules()[module].name != "__init__.py":
            package = package[:-1]
        package = package[:len(package) - (node.level - 1)]
        base = ".".join([*package, base] if base else package)
    # ``from pkg import name``: the submodule pkg.name when there is one, else pkg itself
    yield from (f"{base}.{alias.name}" for alias in node.names)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _walk(node: ast.AST, in_function: bool = False
          ) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if _is_type_checking(child):
            for other in getattr(child, "orelse", []):
                yield from _walk(other, in_function)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, in_function
        else:
            yield from _walk(child, in_function or isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))


@cache
def tree(module: str) -> ast.Module:
    return ast.parse(modules()[module].read_text(encoding="utf-8"))


@cache
def imports() -> tuple[Import, ...]:
    found: list[Import] = []
    for module in modules():
        for node, in_function in _walk(tree(module)):
            for name in _targets(node, module):
                target = resolve(name)
                if target != module:
                    found.append(Import(module, target, node.lineno, in_function))
    return tuple(found)


def graph() -> dict[str, dict[str, Import]]:
    """Module-level edges between our modules: source -> target -> the import."""
    edges: dict[str, dict[str, Import]] = {m: {} for m in modules()}
    for imp in imports():
        if not imp.in_function and imp.target in modules():
            edges[imp.source].setdefault(imp.target, imp)
    return edges


def strongly_connected(edges: dict[str, dict[str, Import]]) -> list[list[str]]:
    """Tarjan's components with more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def one_cycle(component: list[str], edges: dict[str, dict[str, Import]]) -> list[Import]:
    """A cycle through the component's first module, as the imports that make it."""
    members = set(component)
    start = component[0]
    path: list[Import] = []
    seen: set[str] = set()

    def walk(v: str) -> bool:
        seen.add(v)
        for w, imp in sorted(edges[v].items()):
            if w not in members:
                continue
            path.append(imp)
            if w == start or (w not in seen and walk(w)):
                return True
            path.pop()
        return False

    walk(start)
    return path


def within(module: str, prefixes: Iterable[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def offences(rule: str, found: Iterable[Import]) -> str:
    lines = [f"  {imp.where()}: {imp.source} imports {imp.target}"
             f"{' (inside a function)' if imp.in_function else ''}" for imp in found]
    return f"{rule}:\n" + "\n".join(lines)


# --------------------------------------------------------------------------- the graph


def test_the_graph_is_read() -> None:
    """The reading finds what we know is there (a broken reader would pass every rule)."""
    edges = graph()
    assert "bot.web.server" in edges["bot.app"]
    assert "bot.cli.database" in edges["bot.cli.tickets"]  # ``from bot.cli.database import``
    assert "bot.journeys.timing" in edges["bot.journeys.plans"]
    assert "bot.sandbox.telegram_html" in edges["bot.sandbox.emulator"]  # a relative import
    assert "bot.services" not in edges["bot.tickets"]  # only under TYPE_CHECKING there
    assert any(within(i.source, ["bot.intake"]) and within(i.target, ["openpyxl"]) and i.in_function
               for i in imports())


def test_a_cycle_is_found_and_named() -> None:
    """The cycle finder on a made-up graph: it names the imports that close the loop."""
    def edge(a: str, b: str) -> Import:
        return Import(a, b, 1, in_function=False)

    edges = {"a": {"b": edge("a", "b")}, "b": {"c": edge("b", "c")},
             "c": {"a": edge("c", "a")}, "d": {"a": edge("d", "a")}}
    [component] = strongly_connected(edges)
    assert component == ["a", "b", "c"]
    assert [(i.source, i.target) for i in one_cycle(component, edges)] == [
        ("a", "b"), ("b", "c"), ("c", "a")]


def test_no_import_cycle_at_load_time() -> None:
    edges = graph()
    cycles = []
    for component in strongly_connected(edges):
        loop = one_cycle(component, edges)
        chain = " -> ".join([loop[0].source, *(imp.target for imp in loop)])
        cycles.append(offences(f"cycle {chain}", loop))
    assert not cycles, "module-level imports form a cycle:\n" + "\n".join(cycles)


# --------------------------------------------------------------------------- the layers


def test_the_web_never_imports_the_cli() -> None:
    found = [i for i in imports() if within(i.source, ["bot.web"]) and within(i.target,
                                                                              ["bot.cli"])]
    assert not found, offences("bot/web imports the CLI; move what both need to the domain",
                               found)


def test_nothing_but_the_cli_imports_the_cli() -> None:
    found = [i for i in imports() if within(i.target, ["bot.cli"])
             and not within(i.source, ["bot.cli"])]
    assert not found, offences("the CLI is an entry point; nothing imports it", found)


def test_the_domain_knows_no_telegram_handlers_web_or_cli() -> None:
    assert not [m for m in DOMAIN if m not in modules()], "a DOMAIN entry names no module"
    found = [i for i in imports() if within(i.source, DOMAIN)
             and within(i.target, DOMAIN_MAY_NOT)]
    assert not found, offences(
        "a domain module imports one of " + ", ".join(DOMAIN_MAY_NOT)
        + " (they call the domain, with plain values; never the other way round)",
        found)


def test_db_does_not_import_bot() -> None:
    found = [i for i in imports() if within(i.source, ["db"]) and within(i.target, ["bot"])
             and (i.source, i.target) not in DB_MAY_IMPORT_FROM_BOT]
    assert not found, offences("db is below bot", found)


def test_only_the_entry_points_import_the_wiring() -> None:
    found = [i for i in imports() if i.target in WIRING_IMPORTERS
             and i.source not in WIRING_IMPORTERS[i.target]]
    assert not found, offences("the wiring is imported by its entry points only", found)


# --------------------------------------------------------------------------- in functions


def _function_import_groups(body: list[ast.stmt]) -> Iterator[list[ast.stmt]]:
    """Runs of consecutive import statements in one block (a comment covers its run)."""
    run: list[ast.stmt] = []
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            run.append(stmt)
            continue
        if run:
            yield run
            run = []
    if run:
        yield run


def imports_without_a_reason() -> list[str]:
    missing = []
    for module in modules():
        lines = modules()[module].read_text(encoding="utf-8").splitlines()
        for node in ast.walk(tree(module)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for block in _blocks(node):
                for run in _function_import_groups(block):
                    before = lines[run[0].lineno - 2].strip()
                    own = [lines[n - 1] for s in run
                           for n in range(s.lineno, (s.end_lineno or s.lineno) + 1)]
                    if not before.startswith("#") and not any("#" in line for line in own):
                        missing.append(f"  {path_of(module)}:{run[0].lineno}: "
                                       f"{lines[run[0].lineno - 1].strip()}")
    return missing


def _blocks(function: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[list[ast.stmt]]:
    """Every statement list in the function that is not another function's own."""
    todo: list[ast.AST] = [function]
    while todo:
        node = todo.pop()
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield block
            for child in block or []:
                if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                    todo.append(child)


def test_every_import_inside_a_function_says_why() -> None:
    missing = imports_without_a_reason()
    assert not missing, (
        "imports inside functions without a comment saying why they are not at the top "
        "(move them to the top, or say which cycle or start-up cost keeps them here):\n"
        + "\n".join(missing))
    in_functions = {(i.source, i.line) for i in imports() if i.in_function}
    assert len(in_functions) <= MAX_IN_FUNCTIONS, (
        f"{len(in_functions)} import statements inside functions (at most "
        f"{MAX_IN_FUNCTIONS}): raise the ceiling only for a reason the comment gives")
