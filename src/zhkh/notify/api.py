"""A resident's notifications and channel preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlalchemy import select

from zhkh.core.api import SessionDep
from zhkh.housing.models import Account
from zhkh.identity.api import require_scope, resident_account
from zhkh.identity.models import ApiToken
from zhkh.notify.models import Contact, NotificationPreference
from zhkh.notify.service import ContactNotFound, default_channels, in_app_for_account, mark_read, set_preference

router = APIRouter(prefix="/api/v1/me", tags=["notifications"])
Resident = Annotated[ApiToken, Depends(require_scope("resident"))]


class NotificationOut(BaseModel):
    id: int
    title: str
    body: str
    created_at: datetime
    read_at: datetime | None


class ContactOut(BaseModel):
    id: int
    name: str
    email: str | None
    phone: str | None
    language: str
    preferences: dict[str, list[str]] = Field(description="alarm kind -> channels; kinds not listed use the defaults")
    default_channels: list[str]


class PreferenceIn(BaseModel):
    channels: list[str] = Field(description="email, sms, in_app; an empty list silences this kind")


@router.get("/notifications", response_model=list[NotificationOut])
def get_notifications(session: SessionDep, token: Resident, unread_only: bool = False) -> list[NotificationOut]:
    """The in-app notifications of the resident's account, newest first."""
    found = in_app_for_account(session, resident_account(token), unread_only)
    return [NotificationOut.model_validate(n, from_attributes=True) for n in found]


@router.post("/notifications/{notification_id}/read", response_model=NotificationOut)
def post_read(notification_id: int, session: SessionDep, token: Resident) -> NotificationOut:
    notification = mark_read(session, resident_account(token), notification_id)
    return NotificationOut.model_validate(notification, from_attributes=True)


def _contacts(session: SessionDep, token: ApiToken) -> list[Contact]:
    return list(
        session.scalars(
            select(Contact)
            .join(Account, Account.id == Contact.account_id)
            .where(Account.number == resident_account(token))
            .order_by(Contact.id)
        )
    )


@router.get("/contacts", response_model=list[ContactOut])
def get_contacts(session: SessionDep, token: Resident) -> list[ContactOut]:
    """Who is notified for this account, and by which channels per alarm kind."""
    contacts = _contacts(session, token)
    preferences: dict[int, dict[str, list[str]]] = {}
    for preference in session.scalars(
        select(NotificationPreference).where(NotificationPreference.contact_id.in_([c.id for c in contacts]))
    ):
        preferences.setdefault(preference.contact_id, {})[preference.alarm_kind] = list(preference.channels)
    return [
        ContactOut(
            id=c.id,
            name=c.name,
            email=c.email,
            phone=c.phone,
            language=c.language,
            preferences=preferences.get(c.id, {}),
            default_channels=[ch.value for ch in default_channels(c)],
        )
        for c in contacts
    ]


@router.put("/contacts/{contact_id}/preferences/{alarm_kind}", response_model=PreferenceIn)
def put_preference(
    contact_id: int, alarm_kind: str, preference: PreferenceIn, session: SessionDep, token: Resident
) -> PreferenceIn:
    """Choose the channels for one alarm kind (leak, spike, no_data, tamper, magnet,
    low_battery, verification_expiring, reading_missing)."""
    if contact_id not in {c.id for c in _contacts(session, token)}:
        raise ContactNotFound(f"contact {contact_id} is not a contact of this account")
    saved = set_preference(session, contact_id, alarm_kind, preference.channels)
    return PreferenceIn(channels=saved.channels)
