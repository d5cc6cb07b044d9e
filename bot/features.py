"""The features carebot is made of, in the order they register: each a module with
``register`` (its handlers, composers and text routes, and what it hangs on ``services`` for
the others) and, when it has jobs, ``schedule``. bot.app wires them; the script checker
reads their sample contexts."""

from __future__ import annotations

from typing import Protocol

from apscheduler.schedulers.base import BaseScheduler
from telegram.ext import Application

from bot import booking_digest, digests, followup, touchpoints
from bot.handlers import (
    complaint,
    marketing,
    mileage,
    owner,
    questionnaire,
    staff,
    survey,
    thread_chat,
)
from bot.services import Services


class Feature(Protocol):
    """A feature module: ``register`` adds its handlers, composers and text routes (and
    hangs what others need on ``services``); it may also have ``schedule`` (:class:`Ticking`)."""

    def register(self, application: Application,  # type: ignore[type-arg]
                 services: Services) -> None: ...


class Ticking(Protocol):
    """A feature with jobs: ``schedule`` adds its APScheduler ticks."""

    def schedule(self, scheduler: BaseScheduler, services: Services) -> None: ...


# In order: the staff feature before the conversations (they share its staff side); the
# mileage button after the touchpoints (it wraps their service-due reminder).
FEATURES: tuple[Feature, ...] = (owner, survey, questionnaire, staff, complaint, marketing,
                                 touchpoints, mileage, thread_chat, followup, digests)
TICKING: tuple[Ticking, ...] = (survey, staff, marketing, touchpoints, followup,
                                booking_digest, digests)
