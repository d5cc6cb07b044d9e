"""Deliveries and workshop visits in: CSV/XLSX files from the DMS and JSON records from the
HTTP API.

Both ways in share one validation per kind of row and one upsert, so a row means the same
thing whichever way it arrives. Every bad row is reported with the row number the person
sees and the reason; every good row is stored; a row's owner, car and touchpoints are
written in one transaction, so nothing is half-written. Re-importing the same data changes
nothing: owners are matched by phone, cars by VIN, and touchpoints by their unique key.

The package's parts, in the order a row meets them: ``columns`` (which header means which
field), ``files`` (reading CSV/XLSX), ``values`` (one cell parsed), ``validation`` (one row
checked), ``deliveries`` and ``visits`` (storing, with ``bulk``'s plain SQL), ``results``
(what an import reports).
"""

from bot.intake.columns import COLUMNS, VISIT_COLUMNS, column_field
from bot.intake.deliveries import import_deliveries_file, import_deliveries_records
from bot.intake.results import DeliveryRow, ImportResult, IntakeError, RowError, VisitRow
from bot.intake.validation import validate_delivery, validate_visit
from bot.intake.values import normalize_plate
from bot.intake.visits import import_visits_file, import_visits_records
from bot.phones import normalize_phone
from bot.vin import VinCheck, check_vin, normalize_vin

__all__ = [
    "COLUMNS",
    "VISIT_COLUMNS",
    "DeliveryRow",
    "ImportResult",
    "IntakeError",
    "RowError",
    "VinCheck",
    "VisitRow",
    "check_vin",
    "column_field",
    "import_deliveries_file",
    "import_deliveries_records",
    "import_visits_file",
    "import_visits_records",
    "normalize_phone",
    "normalize_plate",
    "normalize_vin",
    "validate_delivery",
    "validate_visit",
]
