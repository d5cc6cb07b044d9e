"""The KPI queries' SQL helpers: one query text for SQLite and PostgreSQL (``?`` numbered
for asyncpg), the advisor a row is attributed to, literal lists, the scope's GROUP BY."""

from __future__ import annotations

import re
from typing import Any

from tortoise import Tortoise


class Sql:
    """Write queries once with ``?`` placeholders; PostgreSQL gets ``$1, $2 ...``."""

    def __init__(self) -> None:
        self.conn = Tortoise.get_connection("default")
        self.postgres = self.conn.capabilities.dialect == "postgres"

    def visit_id_of(self, payload: str) -> str:
        """The integer ``visit_id`` of a touchpoint's JSON payload, NULL when absent or odd."""
        if self.postgres:
            return (f"CASE WHEN ({payload}->>'visit_id') ~ '^[0-9]{{1,9}}$' "
                    f"THEN ({payload}->>'visit_id')::int END")
        return f"CAST(json_extract({payload}, '$.visit_id') AS INTEGER)"

    async def rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        if self.postgres:
            n = 0

            def number(_: re.Match[str]) -> str:
                nonlocal n
                n += 1
                return f"${n}"

            sql = re.sub(r"\?", number, sql)
        return list(await self.conn.execute_query_dict(sql, params))


def advisor_of(*columns: str) -> str:
    """The first non-empty advisor name among ``columns`` ('' when none)."""
    return first_advisor(*(f"NULLIF({c}, '')" for c in columns))


def first_advisor(*names: str) -> str:
    """The first of ``names`` that is not NULL ('' when none). COALESCE stops at the first
    name it finds, so a scalar subquery among them runs only when the ones before are
    NULL (empty names are turned into NULL by the caller)."""
    return "COALESCE(" + ", ".join(names) + ", '')"


def in_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def num(value: Any) -> int:
    return int(value or 0)


def scope_select(group: bool, expr: str) -> tuple[str, str]:
    """(select expression, GROUP BY clause) for a per-advisor or a dealership query."""
    return (expr, "GROUP BY 1") if group else ("'*'", "")


def group_clause(group: bool, *columns: str) -> str:
    """``GROUP BY`` the scope (per advisor) and then ``columns``."""
    return "GROUP BY " + ", ".join((("1",) if group else ()) + columns)


def int_list(values: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(int(v)) for v in values) + ")"
