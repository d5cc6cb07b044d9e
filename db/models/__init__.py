"""The customer file, the outbox and the message log, one module per feature.

All datetimes are stored in UTC (Tortoise ``use_tz=True``); local time is only for display,
quiet hours and daily scans. Tortoise finds the models through this package, so every model
is imported here; import them from ``db.models``.
"""

from db.models.bookings import Booking, BookingChannel, BookingKind, BookingStatus, ScanState
from db.models.calls import (
    CallOutcome,
    CallReason,
    CallStatus,
    PhoneCall,
    PhoneCallAttempt,
    RecallAnswer,
)
from db.models.campaigns import Campaign, CampaignPress, CampaignStatus, ConsentRecord, CustomerTag
from db.models.delivery import FailedSend, InboxStatus, InboxUpdate, Notice, NoticeStatus
from db.models.people import (
    AuditLog,
    Customer,
    Staff,
    StaffRole,
    Vehicle,
    VehicleStatus,
    Visit,
    VisitKind,
)
from db.models.scores import Score, ScoreAnswer, ScoreRates
from db.models.scripts import ScriptEdit
from db.models.settings import SettingOverride
from db.models.threads import CannedReply, Thread, ThreadKind, ThreadMessage, ThreadState
from db.models.tickets import Ticket, TicketEvent, TicketLevel, TicketMessage, TicketState
from db.models.touchpoints import Conversation, Direction, MessageLog, Touchpoint, TouchpointStatus
from db.models.workshop import MileageReading, RecommendedRepair, ServiceForecast

__all__ = [
    "AuditLog",
    "Booking",
    "BookingChannel",
    "BookingKind",
    "BookingStatus",
    "CallOutcome",
    "CallReason",
    "CallStatus",
    "Campaign",
    "CampaignPress",
    "CampaignStatus",
    "CannedReply",
    "ConsentRecord",
    "Conversation",
    "Customer",
    "CustomerTag",
    "Direction",
    "FailedSend",
    "InboxStatus",
    "InboxUpdate",
    "MessageLog",
    "MileageReading",
    "Notice",
    "NoticeStatus",
    "PhoneCall",
    "PhoneCallAttempt",
    "RecallAnswer",
    "RecommendedRepair",
    "ScanState",
    "Score",
    "ScoreAnswer",
    "ScoreRates",
    "ScriptEdit",
    "ServiceForecast",
    "SettingOverride",
    "Staff",
    "StaffRole",
    "Thread",
    "ThreadKind",
    "ThreadMessage",
    "ThreadState",
    "Ticket",
    "TicketEvent",
    "TicketLevel",
    "TicketMessage",
    "TicketState",
    "Touchpoint",
    "TouchpointStatus",
    "Vehicle",
    "VehicleStatus",
    "Visit",
    "VisitKind",
]
