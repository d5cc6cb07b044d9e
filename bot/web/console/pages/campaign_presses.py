"""Who pressed a campaign's button (issue 18): the owners to call back, per button, with
their file linked for those who may open files, and as CSV.

Marketing sees the list (the owners asked to hear more: name, phone, advisor, when); the
link to an owner's file only shows for staff who may open customer files."""

from __future__ import annotations

import csv
import io

from aiohttp import web

from bot.web.console import access, console_of, render, requires, staff_of
from bot.web.console.access import can
from bot.web.console.pages.campaign_form import campaign_or_none, not_found, translator
from bot.web.console.render import csv_cell
from db.models import Campaign, CampaignPress

BUTTONS = ("interested", "book", "unsubscribe")
MAX_ROWS = 5000  # a press list is for calling back; beyond this, the CSV of a report


async def _presses(campaign: Campaign, button: str) -> list[CampaignPress]:
    return await CampaignPress.filter(campaign_id=campaign.id, button=button) \
        .order_by("created_at", "id").limit(MAX_ROWS).prefetch_related("customer")


@requires(access.CAMPAIGNS)
async def press_list(request: web.Request) -> web.StreamResponse:
    campaign = await campaign_or_none(request)
    if campaign is None:
        return await not_found(request)
    button = request.match_info["button"]
    presses = await _presses(campaign, button)
    if request.query.get("format") == "csv":
        return _csv(request, campaign, button, presses)
    return await render(request, "campaign_presses.html", campaign=campaign, button=button,
                        presses=presses, buttons=BUTTONS,
                        files=can(staff_of(request), access.CUSTOMERS))


def _csv(request: web.Request, campaign: Campaign, button: str,
         presses: list[CampaignPress]) -> web.Response:
    t = translator(request)
    tz = console_of(request).services.settings.tz
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([t("campaigns.presses.name"), t("campaigns.presses.phone"),
                     t("campaigns.presses.advisor"), t("campaigns.presses.when")])
    for press in presses:
        owner = press.customer
        writer.writerow([csv_cell(owner.name), csv_cell(owner.phone), csv_cell(owner.advisor),
                         f"{press.created_at.astimezone(tz):%Y-%m-%d %H:%M}"])
    return web.Response(
        body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv",
        charset="utf-8", headers={"Content-Disposition":
                                  f'attachment; filename="campaign-{campaign.id}-{button}.csv"'})


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get(r"/campaigns/{id:\d{1,9}}/presses/{button:(?:" + "|".join(BUTTONS) + ")}",
                   press_list)
