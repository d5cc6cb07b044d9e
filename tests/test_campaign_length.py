"""A campaign text leaves room for the how-to-stop footer: Telegram takes 4096 characters in
one message, and a text that fits alone but not with its footer would be refused for every
owner at send time. It is refused when saved instead, with the numbers."""

from __future__ import annotations

import pytest

from bot.campaigns import content, promotions
from bot.campaigns.policy import CampaignError
from bot.clock import FakeClock
from bot.templating import OUTPUT_CAP
from bot.texts import LANGUAGES, Scripts
from db.models import Campaign

DEALER = {"name": "星辰汽车4S店（广州天河旗舰店）·售后服务中心",
          "phone": "+86 20 8888 6666 转 8001"}


def test_the_footer_fits_the_room_kept_for_it() -> None:
    for lang in LANGUAGES:
        footer = Scripts().render("campaign_footer", lang, dealer=DEALER)
        assert len(footer) + len("\n\n") <= content.FOOTER_ROOM, lang
    assert content.TEXT_CAP + content.FOOTER_ROOM == OUTPUT_CAP


def test_a_text_up_to_the_cap_passes_one_more_character_is_refused() -> None:
    assert content.check_message("好" * content.TEXT_CAP, DEALER) is None
    problem = content.check_message("好" * (content.TEXT_CAP + 7), DEALER)
    assert problem is not None and problem.kind == "length"
    assert problem.size == content.TEXT_CAP + 7
    assert "shorten it by 7" in str(problem)


async def test_the_api_and_cli_refuse_it_with_the_numbers(db: str, clock: FakeClock) -> None:
    now = clock.now()
    with pytest.raises(CampaignError, match=r"messages.zh_CN: the text is too long: .*3801"):
        await promotions.create_campaign(name="长文", messages={"zh_CN": "好" * 3801},
                                         now=now, dealer=DEALER)
    assert await Campaign.all().count() == 0
