"""One campaign: its progress and results with charts (drawn by :mod:`..svg`), and the
actions on it (pause, resume, cancel, back to draft)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from markupsafe import Markup
from tortoise import Tortoise

from bot.campaigns import policy, promotions
from bot.campaigns.policy import CampaignError
from bot.texts import LANGUAGES
from bot.web.console import access, console_of, render, requires, svg
from bot.web.console.pages.campaign_form import audit, campaign_or_none, not_found, translator
from bot.web.console.render import Translator
from db.models import Campaign, CampaignStatus

log = logging.getLogger(__name__)

TRANSITIONS = ("pause", "resume", "cancel", "unschedule")
RUNNING = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED)
AFTER: dict[str, tuple[CampaignStatus, ...]] = {  # the status each action leaves behind
    "scheduled": (CampaignStatus.SCHEDULED,), "pause": (CampaignStatus.PAUSED,),
    "resume": (CampaignStatus.SCHEDULED, CampaignStatus.SENDING),
    "cancel": (CampaignStatus.CANCELLED,),
}
# Chart colours (fill), one per bar kind.
COLOURS = {"sent": "#1f8a4c", "failed": "#c53030", "unreachable": "#b7791f",
           "pending": "#718096", "held": "#a0aec0", "interested": "#0b63c5",
           "book": "#2b6cb0", "unsubscribe": "#805ad5"}


BUCKETS = (60, 300, 600, 1800, 3600, 2 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


async def sends_over_time(campaign_id: int, tz: Any, max_bars: int = 24
                          ) -> list[tuple[str, int]]:
    """Messages of the campaign sent per time bucket (a minute up to a week, so that there
    are at most ``max_bars``): two aggregate queries over the campaign's rows."""
    conn = Tortoise.get_connection("default")
    postgres = conn.capabilities.dialect == "postgres"
    epoch = ("CAST(FLOOR(EXTRACT(EPOCH FROM sent_at)) AS BIGINT)" if postgres
             else "CAST(strftime('%s', sent_at) AS INTEGER)")
    marks = ("$1", "$2") if postgres else ("?", "?")
    where = (f"FROM touchpoint WHERE kind = {marks[0]} AND occasion_key = {marks[1]} "
             f"AND status = 'sent' AND sent_at IS NOT NULL")
    args = [policy.KIND, policy.occasion_key(campaign_id)]
    span = await conn.execute_query_dict(f"SELECT MIN({epoch}) AS lo, MAX({epoch}) AS hi "
                                         f"{where}", args)
    if not span or span[0]["lo"] is None:
        return []
    lo, hi = int(span[0]["lo"]), int(span[0]["hi"])
    width = next((b for b in BUCKETS if (hi - lo) / b < max_bars), BUCKETS[-1])
    rows = await conn.execute_query_dict(
        f"SELECT {epoch} / {width} AS b, COUNT(*) AS n {where} GROUP BY 1 ORDER BY 1", args)
    counts = {int(r["b"]): int(r["n"]) for r in rows}
    first, last = lo // width, hi // width
    fmt = "%H:%M" if (hi - lo) < 86400 and width < 86400 else "%m-%d %H:%M"
    if width >= 86400:
        fmt = "%m-%d"
    return [(datetime.fromtimestamp(b * width, UTC).astimezone(tz).strftime(fmt),
             counts.get(b, 0)) for b in range(first, last + 1)]


# --------------------------------------------------------------------------- one campaign


async def charts(campaign_id: int, stats: dict[str, Any], t: Translator, tz: Any
                 ) -> tuple[Markup, Markup | None]:
    """The results as horizontal bars (each with its ``data-key``), and the messages sent
    over time as vertical bars (None before the first is sent)."""
    bars = [svg.Datum(t(f"campaigns.stat.{k}"), int(stats[k]), color=COLOURS[k], key=k)
            for k in ("sent", "failed", "unreachable", "pending", "held")]
    bars += [svg.Datum(t(f"campaigns.press.{k}"), int(stats["pressed"].get(k, 0)),
                       color=COLOURS[k], key=k)
             for k in ("interested", "book", "unsubscribe")]
    chart = svg.bar_chart(bars, title=t("campaigns.chart.results"), horizontal=True,
                          chart_id="chart-results")
    buckets = await sends_over_time(campaign_id, tz)
    if not buckets:
        return chart, None
    return chart, svg.bar_chart(buckets, title=t("campaigns.chart.timeline"),
                                color=COLOURS["sent"], chart_id="chart-timeline")


async def detail(request: web.Request, campaign: Campaign, status: int = 200,
                  error_key: str = "", notice_key: str = "") -> web.Response:
    t = translator(request)
    tz = console_of(request).services.settings.tz
    stats = await promotions.stats(campaign)
    launched = campaign.launched_at is not None
    chart = timeline = None
    if launched:
        chart, timeline = await charts(campaign.id, stats, t, tz)
    queued = int(stats.get("queued", 0))
    share = stats["sent"] / queued if queued else None
    return await render(
        request, "campaign.html", status=status, campaign=campaign, stats=stats,
        launched=launched, chart=chart, timeline=timeline, share=share,
        reasons=policy.EXCLUSION_REASONS, error_key=error_key, notice_key=notice_key,
        can_pause=campaign.status in (CampaignStatus.SCHEDULED, CampaignStatus.SENDING),
        can_resume=campaign.status == CampaignStatus.PAUSED,
        can_cancel=campaign.status in (CampaignStatus.DRAFT, *RUNNING),
        can_unschedule=campaign.status == CampaignStatus.SCHEDULED,
        audience=sorted((campaign.audience or {}).items()),
        messages=[(code, campaign.messages[code]) for code in LANGUAGES
                  if code in campaign.messages],
    )


@requires(access.CAMPAIGNS)
async def show(request: web.Request) -> web.Response:
    campaign = await campaign_or_none(request)
    if campaign is None:
        return await not_found(request)
    done = request.query.get("done", "")
    # The notice of an action, while the campaign is still as the action left it (not once
    # a scheduled campaign has since sent and finished, say).
    notice_key = f"campaigns.notice.{done}" if campaign.status in AFTER.get(done, ()) else ""
    return await detail(request, campaign, notice_key=notice_key)


@requires(access.CAMPAIGNS)
async def transition(request: web.Request) -> web.StreamResponse:
    """Pause, resume, cancel (promotions), or take a scheduled campaign back to draft."""
    campaign = await campaign_or_none(request)
    if campaign is None:
        return await not_found(request)
    action = request.match_info["action"]
    now = console_of(request).services.clock.now()
    affected = 0
    try:
        if action == "unschedule":
            # Only while nothing is written: the launch claims scheduled -> sending the
            # same way, so exactly one of the two wins.
            affected = await Campaign.filter(id=campaign.id,
                                             status=CampaignStatus.SCHEDULED).update(
                status=CampaignStatus.DRAFT, scheduled_at=None, force_reason="",
                updated_at=now)
            if not affected:
                raise CampaignError("not scheduled")
        else:
            affected = await getattr(promotions, action)(campaign, now=now)
    except CampaignError as exc:
        log.info("campaign %s: %s refused: %s", campaign.id, action, exc)
        return await detail(request, await Campaign.get(id=campaign.id), status=409,
                             error_key=f"campaigns.err.cannot_{action}")
    await audit(request, action, campaign.id, messages=affected)
    if action == "unschedule":
        raise web.HTTPSeeOther(f"/campaigns/{campaign.id}/edit?notice=unschedule")
    raise web.HTTPSeeOther(f"/campaigns/{campaign.id}?done={action}")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(r"/campaigns/{id:\d{1,9}}", show)
    actions = "|".join(TRANSITIONS)
    router.add_post(r"/campaigns/{id:\d{1,9}}/{action:(?:" + actions + ")}", transition)
