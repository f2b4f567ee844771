"""Contacts and their preferences; planning deliveries for alarms; sending what is due."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from zhkh.alarms.models import AlarmKind
from zhkh.core.bulk import insert_new_rows
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.errors import InvalidInput, NotFound
from zhkh.housing.models import Account, Building, Premise
from zhkh.notify.channels import Outgoing, Transport, TransportError
from zhkh.notify.models import (
    Channel,
    Contact,
    ContactKind,
    Delivery,
    DeliveryStatus,
    InAppNotification,
    NotificationPreference,
)
from zhkh.notify.templates import LANGUAGES, render_alarm

# Waits between attempts: a minute, five, half an hour, two hours, then twelve.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=12))
# A message claimed for sending but never confirmed (the worker died mid-send) is retried after this.
STUCK_AFTER = timedelta(minutes=10)
# What a contact's address may be: one @, no spaces or line breaks (a CR/LF would let an address
# smuggle in extra mail headers).
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
log = logging.getLogger("zhkh.notify")


class ContactNotFound(NotFound):
    pass


class InvalidContact(InvalidInput):
    pass


# --- contacts ----------------------------------------------------------------------------------


def add_contact(
    session: Session,
    kind: ContactKind,
    name: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    language: str = "ru",
    account_number: str | None = None,
    building_code: str | None = None,
) -> Contact:
    """A resident belongs to a personal account; an operator to a building, or to all of them."""
    if language not in LANGUAGES:
        raise InvalidContact(f"language must be one of {', '.join(LANGUAGES)}, got {language!r}")
    if email is not None and not _EMAIL.fullmatch(email):
        raise InvalidContact(f"not an e-mail address (name@domain, no spaces or line breaks): {email!r}")
    if phone is not None and not phone.lstrip("+").isdigit():
        raise InvalidContact(f"a phone number is digits with an optional +, got {phone!r}")
    account_id = building_id = None
    if kind is ContactKind.RESIDENT:
        if account_number is None:
            raise InvalidContact("a resident contact needs the personal account")
        account_id = session.scalar(select(Account.id).where(Account.number == account_number))
        if account_id is None:
            raise InvalidContact(f"no personal account {account_number!r}")
    elif building_code is not None:
        building_id = session.scalar(select(Building.id).where(Building.code == building_code))
        if building_id is None:
            raise InvalidContact(f"no building {building_code!r}")
    contact = Contact(
        kind=kind,
        name=name,
        email=email,
        phone=phone,
        language=language,
        account_id=account_id,
        building_id=building_id,
    )
    session.add(contact)
    session.flush()
    return contact


def set_preference(
    session: Session, contact_id: int, alarm_kind: str, channels: Sequence[str]
) -> NotificationPreference:
    """Which channels ``contact_id`` wants for ``alarm_kind`` (an empty list silences it)."""
    if alarm_kind not in {k.value for k in AlarmKind}:
        raise InvalidContact(f"unknown alarm kind {alarm_kind!r}; known: {', '.join(k.value for k in AlarmKind)}")
    unknown = [c for c in channels if c not in {ch.value for ch in Channel}]
    if unknown:
        raise InvalidContact(f"unknown channel(s) {', '.join(unknown)}; known: email, sms, in_app")
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound(f"no contact {contact_id}")
    preference = session.scalar(
        select(NotificationPreference).where(
            NotificationPreference.contact_id == contact_id, NotificationPreference.alarm_kind == alarm_kind
        )
    )
    if preference is None:
        preference = NotificationPreference(contact_id=contact_id, alarm_kind=alarm_kind, channels=list(channels))
        session.add(preference)
    else:
        preference.channels = list(channels)
    session.flush()
    return preference


def default_channels(contact: Contact) -> list[Channel]:
    """Without a preference: in-app always, e-mail when there is an address. SMS costs money,
    so only those who ask for it get it."""
    channels = [Channel.IN_APP]
    if contact.email:
        channels.append(Channel.EMAIL)
    return channels


# --- planning ----------------------------------------------------------------------------------


def plan_alarm_deliveries(session: Session, alarm: Mapping[str, Any]) -> int:
    """For an ``alarm.raised`` outbox message: one delivery per recipient and channel. Residents of
    the alarm's account and operators of its building (and of all buildings) hear about it.
    Idempotent: planning the same alarm twice plans nothing new. Returns deliveries planned."""
    recipients = _recipients(session, alarm.get("account_id"), alarm.get("building_id"))
    if not recipients:
        return 0
    preferences = _preferences(session, [c.id for c in recipients], str(alarm["kind"]))
    values = {**alarm.get("details", {}), **_place(session, alarm.get("account_id"), alarm.get("building_id"))}
    values["subject"] = alarm.get("subject")
    now = utc_now()
    rows: list[dict[str, Any]] = []
    for contact in recipients:
        title, body = render_alarm(str(alarm["kind"]), contact.language, values)
        for channel in preferences.get(contact.id, default_channels(contact)):
            address = {Channel.EMAIL: contact.email, Channel.SMS: contact.phone}.get(Channel(channel))
            if Channel(channel) is not Channel.IN_APP and not address:
                continue
            rows.append(
                {
                    "dedupe_key": f"alarm:{alarm['alarm_id']}:{contact.id}:{channel}",
                    "contact_id": contact.id,
                    "channel": channel,
                    "address": address,
                    "subject": title,
                    "body": body,
                    "status": DeliveryStatus.PENDING.value,
                    "next_attempt_at": now,
                }
            )
    planned = insert_new_rows(session, Delivery, rows, returning=(Delivery.id, Delivery.channel))
    in_app = [row.id for row in planned if row.channel == Channel.IN_APP]
    if in_app:
        _deliver_in_app(session, in_app, now)
    return len(planned)


def _recipients(session: Session, account_id: int | None, building_id: int | None) -> list[Contact]:
    conditions = [(Contact.kind == ContactKind.OPERATOR) & Contact.building_id.is_(None)]
    if account_id is not None:
        conditions.append((Contact.kind == ContactKind.RESIDENT) & (Contact.account_id == account_id))
    if building_id is not None:
        conditions.append((Contact.kind == ContactKind.OPERATOR) & (Contact.building_id == building_id))
    return list(session.scalars(select(Contact).where(Contact.active.is_(True), or_(*conditions)).order_by(Contact.id)))


def _preferences(session: Session, contact_ids: list[int], kind: str) -> dict[int, list[str]]:
    rows = session.execute(
        select(NotificationPreference.contact_id, NotificationPreference.channels).where(
            NotificationPreference.contact_id.in_(contact_ids), NotificationPreference.alarm_kind == kind
        )
    )
    return {contact_id: list(channels) for contact_id, channels in rows}


def _place(session: Session, account_id: int | None, building_id: int | None) -> dict[str, Any]:
    if account_id is not None:
        row = session.execute(
            select(Account.number, Building.address)
            .join(Premise, Premise.id == Account.premise_id)
            .join(Building, Building.id == Premise.building_id)
            .where(Account.id == account_id)
        ).one_or_none()
        if row is not None:
            return {"account": row.number, "address": row.address}
    if building_id is not None:
        address = session.scalar(select(Building.address).where(Building.id == building_id))
        return {"address": address}
    return {}


def _deliver_in_app(session: Session, delivery_ids: list[int], now: datetime) -> None:
    for delivery in session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))):
        session.add(
            InAppNotification(
                contact_id=delivery.contact_id, delivery_id=delivery.id, title=delivery.subject, body=delivery.body
            )
        )
        delivery.status, delivery.sent_at, delivery.attempts = DeliveryStatus.SENT, now, 1
    session.flush()


# --- sending -----------------------------------------------------------------------------------


def claim_due(session: Session, now: datetime, limit: int = 100) -> list[int]:
    """Mark up to ``limit`` due deliveries as being sent and return their ids. The caller commits
    before sending, so two workers never send the same message (SKIP LOCKED on PostgreSQL)."""
    due = (
        select(Delivery.id)
        .where(
            or_(
                (Delivery.status == DeliveryStatus.PENDING) & (Delivery.next_attempt_at <= now),
                (Delivery.status == DeliveryStatus.SENDING) & (Delivery.next_attempt_at <= now - STUCK_AFTER),
            )
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(due))
    if ids:
        session.execute(
            update(Delivery).where(Delivery.id.in_(ids)).values(status=DeliveryStatus.SENDING, next_attempt_at=now)
        )
    return ids


def send_claimed(
    session: Session, delivery_ids: Sequence[int], transports: Mapping[Channel, Transport], now: datetime
) -> dict[str, int]:
    """Send claimed deliveries; each is marked sent, or scheduled again with backoff, or failed
    after the last attempt. Returns counts by outcome."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    max_attempts = get_settings().notify_max_attempts
    for delivery in session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids)).order_by(Delivery.id)):
        delivery.attempts += 1
        transport = transports.get(delivery.channel)
        try:
            if transport is None:
                raise TransportError(f"the {delivery.channel} channel is not configured")
            transport.send(Outgoing(delivery.dedupe_key, delivery.address or "", delivery.subject, delivery.body))
        except TransportError as exc:  # the channel is away: try again later
            counts[_retry_or_fail(delivery, str(exc), now, give_up=delivery.attempts >= max_attempts)] += 1
            continue
        except Exception as exc:  # this message or our code: retrying will not help
            log.exception("delivery %s cannot be sent", delivery.id)
            counts[_retry_or_fail(delivery, f"{type(exc).__name__}: {exc}", now, give_up=True)] += 1
            continue
        delivery.status, delivery.sent_at, delivery.last_error = DeliveryStatus.SENT, now, None
        counts["sent"] += 1
    session.flush()
    return counts


def _retry_or_fail(delivery: Delivery, error: str, now: datetime, *, give_up: bool) -> str:
    delivery.last_error = error[:2000]
    if give_up:
        delivery.status = DeliveryStatus.FAILED
        return "failed"
    delivery.status = DeliveryStatus.PENDING
    delivery.next_attempt_at = now + BACKOFF[min(delivery.attempts, len(BACKOFF)) - 1]
    return "retry"


# --- in-app ------------------------------------------------------------------------------------


def in_app_for_account(session: Session, account_number: str, unread_only: bool = False) -> list[InAppNotification]:
    statement = (
        select(InAppNotification)
        .join(Contact, Contact.id == InAppNotification.contact_id)
        .join(Account, Account.id == Contact.account_id)
        .where(Account.number == account_number)
        .order_by(InAppNotification.created_at.desc(), InAppNotification.id.desc())
    )
    if unread_only:
        statement = statement.where(InAppNotification.read_at.is_(None))
    return list(session.scalars(statement))


def mark_read(session: Session, account_number: str, notification_id: int) -> InAppNotification:
    notification = session.scalar(
        select(InAppNotification)
        .join(Contact, Contact.id == InAppNotification.contact_id)
        .join(Account, Account.id == Contact.account_id)
        .where(Account.number == account_number, InAppNotification.id == notification_id)
    )
    if notification is None:
        raise ContactNotFound(f"no notification {notification_id} for account {account_number}")
    notification.read_at = notification.read_at or utc_now()
    session.flush()
    return notification
