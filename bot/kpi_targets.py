"""The dealership's targets for its figures (issue 17, point 4): each figure met or missed,
with the trend against the period before. Pure: figures in, verdicts out.

Targets are a dealership setting (``CAREBOT_KPI_TARGETS``: ``name:>=value`` or
``name:<=value``, comma-separated; a percentage for rates, a count for the active base);
what it does not set comes from the manuals where they give one (003 §2.1-2.2: 回访率 100 %;
000 篇一: CSI 93 %, 返修率 below 2 %, 基盘客户数 1,500). A figure without a target is
shown, not judged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

AT_LEAST = ">="
AT_MOST = "<="

# name -> (is a rate, direction that is good, manual default or None)
FIGURES: dict[str, tuple[bool, str, float | None]] = {
    "followup_rate": (True, AT_LEAST, 1.0),          # 回访率 100 % (003 §2.1, §2.2)
    "satisfied_share": (True, AT_LEAST, 0.93),       # 满意+很满意, CSI ≥ 93 % (000 篇一)
    "share_9_10": (True, AT_LEAST, None),
    "first_service_rate": (True, AT_LEAST, None),    # 首保率
    "repeat_repair_rate": (True, AT_MOST, 0.02),     # 返修率 < 2 % (000 篇一)
    "booking_rate": (True, AT_LEAST, None),          # 预约率
    "renewal_rate": (True, AT_LEAST, None),          # 续保率
    "complaint_rate": (True, AT_MOST, None),
    "active_base_12m": (False, AT_LEAST, 1500.0),    # 基盘客户数 1,500 (000 篇一)
    "active_base_24m": (False, AT_LEAST, None),
}
_ITEM = re.compile(r"^([a-z_0-9]+)\s*:\s*(>=|<=)?\s*([0-9]+(?:\.[0-9]+)?)\s*(%?)$")


@dataclass(frozen=True)
class Target:
    value: float  # a fraction for rates (0.93), a count otherwise
    direction: str  # AT_LEAST or AT_MOST

    def met(self, figure: float) -> bool:
        return figure >= self.value if self.direction == AT_LEAST else figure <= self.value


def default_targets() -> dict[str, Target]:
    return {name: Target(default, good) for name, (_, good, default) in FIGURES.items()
            if default is not None}


def parse_targets(value: str) -> dict[str, Target]:
    """``"first_service_rate:>=90, repeat_repair_rate:<=1.5, active_base_12m:2000"`` over the
    manuals' defaults. Rates are percentages (``%`` optional); the direction defaults to the
    figure's good one. A ValueError names the bad item."""
    targets = default_targets()
    for item in (i.strip() for i in re.split(r"[,;\n]+", value)):
        if not item or item.startswith("#"):
            continue
        m = _ITEM.match(item.lower())
        if not m or m.group(1) not in FIGURES:
            names = ", ".join(FIGURES)
            raise ValueError(f"{item!r}: write NAME:>=VALUE or NAME:<=VALUE; names: {names}")
        name, direction, number = m.group(1), m.group(2), float(m.group(3))
        rate, good, _ = FIGURES[name]
        if rate and number > 100:
            raise ValueError(f"{item!r}: a rate is a percentage, 0-100")
        targets[name] = Target(number / 100 if rate else number, direction or good)
    return targets


@dataclass(frozen=True)
class Verdict:
    name: str
    value: float | None
    target: Target | None
    previous: float | None

    @property
    def met(self) -> bool | None:
        """True/False against the target; None without a target or a figure."""
        if self.target is None or self.value is None:
            return None
        return self.target.met(self.value)

    @property
    def trend(self) -> str:
        """"up", "down", "same", or "" when either period has no figure."""
        if self.value is None or self.previous is None:
            return ""
        if abs(self.value - self.previous) < 1e-9:
            return "same"
        return "up" if self.value > self.previous else "down"

    @property
    def better(self) -> bool | None:
        """Whether the trend goes the good way (None: no trend, or no change)."""
        if self.trend in ("", "same"):
            return None
        good = self.target.direction if self.target else FIGURES[self.name][1]
        return (self.trend == "up") == (good == AT_LEAST)


def judge(figures: dict[str, float | None], previous: dict[str, float | None],
          targets: dict[str, Target]) -> list[Verdict]:
    """One verdict per known figure, in the order of ``FIGURES``."""
    return [Verdict(name, figures.get(name), targets.get(name), previous.get(name))
            for name in FIGURES if name in figures]


def is_rate(name: str) -> bool:
    return FIGURES[name][0]
