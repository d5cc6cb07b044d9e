"""What an import reports: the row errors, the validated rows, the counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from db.models import VisitKind


class IntakeError(Exception):
    """The whole file cannot be imported (unreadable, unknown format, missing columns)."""


@dataclass(frozen=True)
class RowError:
    """One problem with one row: ``row`` as the person sees it (header = row 1 in a file)."""

    row: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"row {self.row}, {self.field}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass(frozen=True)
class DeliveryRow:
    """A validated delivery. Optional values are None when not given: None never erases."""

    row: int
    vin: str
    owner_name: str
    phone: str  # E.164
    delivered_at: datetime  # UTC
    plate: str | None = None
    model: str | None = None
    birthday: date | None = None
    licence_expiry: date | None = None
    insurance_expiry: date | None = None
    sales_advisor: str | None = None
    language: str | None = None  # "zh_CN" or "en"
    title: str | None = None  # "mr" or "ms" (称呼/性别), None when not given
    birthday_lunar: bool | None = None  # celebrates the 农历 anniversary of ``birthday``
    marketing_consent: bool | None = None  # yes/no/是/否/1/0; recorded by bot.consent (issue 6)


@dataclass
class ImportResult:
    """What an import did, row by row: for the CLI (summary) and the HTTP API (to_dict).

    ``total`` counts non-empty rows: ``created + updated + unchanged + failed + superseded``.
    A row is *created* when its car is new to the files, *updated* when its car or its
    owner's file changed, *unchanged* otherwise; *superseded* rows repeat a VIN that a later
    row of the same import sets.
    """

    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    superseded: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Rows not stored because of errors."""
        return len({e.row for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self, limit: int = 50) -> str:
        """A few lines for a person; at most ``limit`` errors and warnings are listed."""
        lines = [
            f"{self.total} row{'' if self.total == 1 else 's'}: {self.created} created, "
            f"{self.updated} updated, "
            f"{self.unchanged} unchanged, {self.failed} with errors (not imported)"
            + (f", {self.superseded} superseded by a later row" if self.superseded else "")
        ]
        for title, items in (("errors", self.errors), ("warnings", self.warnings)):
            if not items:
                continue
            lines.append(f"{title} ({len(items)}):")
            lines.extend(f"  {item}" for item in items[:limit])
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "superseded": self.superseded,
            "errors": [e.to_dict() for e in self.errors],
            "warnings": [w.to_dict() for w in self.warnings],
        }


@dataclass(frozen=True)
class VisitRow:
    """A validated workshop visit."""

    row: int
    vin: str
    kind: VisitKind
    left_at: datetime  # UTC
    advisor: str = ""
    mileage: int | None = None
    major_repair: bool = False
    next_service_on: date | None = None
    next_service_km: int | None = None
    recommended_repairs: tuple[str, ...] = ()
    repairs_done: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, datetime, str]:
        return self.vin, self.left_at, self.kind.value


@dataclass
class Stored:
    """The outcome of storing some rows; only added to the result once committed."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)

    def add(self, other: Stored) -> None:
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.errors += other.errors
        self.warnings += other.warnings
