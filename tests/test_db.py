from datetime import UTC, datetime

import pytest
from tortoise.exceptions import IntegrityError

from db.models import Customer, Touchpoint, Vehicle


async def test_vin_is_unique_and_touchpoint_key_is_unique(db: str) -> None:
    c = await Customer.create(name="张三", phone="+8613800138000", link_token="t1")
    await Vehicle.create(vin="LSVAU218XN2183294", customer=c)
    with pytest.raises(IntegrityError):
        await Vehicle.create(vin="LSVAU218XN2183294", customer=c)
    due = datetime(2026, 11, 3, tzinfo=UTC)
    await Touchpoint.create(customer=c, kind="k", occasion_key="o", due_at=due)
    with pytest.raises(IntegrityError):
        await Touchpoint.create(customer=c, kind="k", occasion_key="o", due_at=due)
    tp = await Touchpoint.get(kind="k")
    assert tp.due_at == due  # stored and read back in UTC
