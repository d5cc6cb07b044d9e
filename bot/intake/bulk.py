"""Plain bulk SQL for the import: ORM instances are too slow for 100,000 rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from db.models import Touchpoint, TouchpointStatus


class Bulk:
    """Plain INSERT/UPDATE statements run with one ``executemany`` per table and chunk.

    Building an ORM instance costs about 100 µs a row, too slow for 100,000 deliveries.
    Values are plain Python objects both drivers accept (str, int, date, aware datetime);
    columns the import does not set get the model's own defaults, read from its metadata, so
    a field added to the model later needs no change here unless it has no default.
    """

    def __init__(self, conn: BaseDBAsyncClient, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.postgres = conn.capabilities.dialect == "postgres"

    def _marks(self, count: int) -> list[str]:
        return [f"${i}" for i in range(1, count + 1)] if self.postgres else ["?"] * count

    async def insert(
        self, model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        if not rows:
            return
        meta = model._meta
        columns = [meta.fields_db_projection[name] for name in fields]
        defaults: list[Any] = []
        for name, column in meta.fields_db_projection.items():
            f = meta.fields_map[name]
            if name in fields or f.generated or f.has_db_default():
                continue
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                value: Any = self.now
            elif f.default is not None:
                value = f.to_db_value(f.default() if callable(f.default) else f.default, model)
            elif f.null:
                continue
            else:
                raise RuntimeError(f"{model.__name__}.{name} has no default; intake must set it")
            columns.append(column)
            defaults.append(value)
        sql = 'INSERT INTO "{}" ({}) VALUES ({})'.format(
            meta.db_table,
            ", ".join(f'"{c}"' for c in columns),
            ", ".join(self._marks(len(columns))),
        )
        await self.conn.execute_many(sql, [[*row, *defaults] for row in rows])

    async def select(
        self, model: type[Model], fields: Sequence[str], key: str, keys: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """``fields`` of the rows whose ``key`` is in ``keys`` (raw values: on SQLite, dates
        and datetimes come back as ISO strings; see :func:`as_date`)."""
        if not keys:
            return []
        meta = model._meta
        sql = 'SELECT {} FROM "{}" WHERE "{}" IN ({})'.format(
            ", ".join(f'"{meta.fields_db_projection[name]}"' for name in fields),
            meta.db_table,
            meta.fields_db_projection[key],
            ", ".join(self._marks(len(keys))),
        )
        _, rows = await self.conn.execute_query(sql, list(keys))
        return [tuple(row) for row in rows]

    async def cancel_pending(self, rows: Sequence[Sequence[Any]]) -> None:
        """Mark skipped the pending touchpoints of (reason, customer id, occasion key) rows."""
        if not rows:
            return
        meta = Touchpoint._meta
        col = meta.fields_db_projection
        skipped, reason, at, customer, key, pending = self._marks(6)
        sql = (
            f'UPDATE "{meta.db_table}" SET "{col["status"]}" = {skipped}, '
            f'"{col["status_reason"]}" = {reason}, "{col["updated_at"]}" = {at} '
            f'WHERE "{col["customer_id"]}" = {customer} AND "{col["occasion_key"]}" = {key} '
            f'AND "{col["status"]}" = {pending}'
        )
        skip, wait = TouchpointStatus.SKIPPED.value, TouchpointStatus.PENDING.value
        values = [[skip, why, self.now, cid, occasion, wait] for why, cid, occasion in rows]
        await self.conn.execute_many(sql, values)

    async def update(
        self, model: type[Model], fields: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """``rows`` hold the new values of ``fields`` and then the primary key."""
        if not rows:
            return
        meta = model._meta
        columns = [meta.fields_db_projection[name] for name in (*fields, "updated_at")]
        marks = self._marks(len(columns) + 1)
        sql = 'UPDATE "{}" SET {} WHERE "{}" = {}'.format(
            meta.db_table,
            ", ".join(f'"{c}" = {m}' for c, m in zip(columns, marks, strict=False)),
            meta.db_pk_column,
            marks[-1],
        )
        await self.conn.execute_many(sql, [[*row[:-1], self.now, row[-1]] for row in rows])


def as_date(value: Any) -> date | None:
    """A date column's raw value as a date (SQLite returns ISO text, PostgreSQL a date)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def as_datetime(value: Any) -> datetime | None:
    """A datetime column's raw value as an aware datetime (stored in UTC)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return cast("datetime | None", value)
