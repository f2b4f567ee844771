"""Notifications on both databases: who gets what, over a real SMTP server and a real HTTP
gateway, with retries and without duplicates; and the worker end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.builders import metered_registry
from tests.servers import http_recorder, smtp_server
from zhkh.alarms.models import AlarmKind
from zhkh.alarms.service import raise_alarm
from zhkh.core.config import Settings
from zhkh.core.db import get_engine, session_scope
from zhkh.core.outbox import OutboxMessage
from zhkh.housing.models import Account, Building
from zhkh.metering.models import Meter
from zhkh.notify.channels import Outgoing, SmsGatewayTransport, SmtpTransport, Transport
from zhkh.notify.models import Channel, ContactKind, Delivery, DeliveryStatus, InAppNotification
from zhkh.notify.service import (
    InvalidContact,
    add_contact,
    claim_due,
    plan_alarm_deliveries,
    send_claimed,
    set_preference,
)
from zhkh.worker import Worker

TODAY = datetime.now(UTC).date()


def soon() -> datetime:
    """Deliveries are planned at the real time, so the tests' clock starts from it."""
    return datetime.now(UTC) + timedelta(seconds=5)


@pytest.fixture
def town(session: Session, tmp_path: Path) -> None:
    metered_registry(session, tmp_path)


def leak(session: Session) -> dict[str, object]:
    account_id = session.scalar(select(Account.id).where(Account.number == "1001"))
    building_id = session.scalar(select(Building.id))
    alarm, _ = raise_alarm(
        session,
        AlarmKind.LEAK,
        "meter:CW-1001",
        building_id=building_id,
        account_id=account_id,
        details={"meter": "CW-1001", "hours": 24},
    )
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "alarm.raised")).all()[-1]
    assert message.payload["alarm_id"] == alarm.id
    return message.payload


def send_all(session: Session, transports: dict[Channel, Transport], now: datetime | None = None) -> dict[str, int]:
    moment = now or soon()
    return send_claimed(session, claim_due(session, moment), transports, moment)


@pytest.mark.usefixtures("town")
def test_resident_and_operators_get_their_channels(session: Session) -> None:
    resident = add_contact(
        session,
        ContactKind.RESIDENT,
        "Иванов И.И.",
        email="ivanov@example.ru",
        phone="+79990001122",
        account_number="1001",
    )
    add_contact(session, ContactKind.RESIDENT, "Сосед", email="other@example.ru", account_number="1002")
    operator = add_contact(
        session, ContactKind.OPERATOR, "Диспетчер", email="dispatch@example.ru", building_code="B-1", language="en"
    )
    set_preference(session, resident.id, "leak", ["sms", "in_app"])
    planned = plan_alarm_deliveries(session, leak(session))
    deliveries = session.execute(
        select(Delivery.contact_id, Delivery.channel, Delivery.status).order_by(Delivery.id)
    ).all()
    assert [(c, ch.value) for c, ch, _ in deliveries] == [
        (resident.id, "sms"),
        (resident.id, "in_app"),
        (operator.id, "in_app"),
        (operator.id, "email"),
    ], "the neighbour of another account hears nothing"
    assert planned == 4
    in_app = session.scalars(select(InAppNotification).order_by(InAppNotification.id)).all()
    assert in_app[0].title == "Возможная протечка: счётчик CW-1001"
    assert in_app[1].title == "Possible leak: meter CW-1001"
    assert "г. Тестовск, ул. Первая, д. 1" in in_app[0].body


@pytest.mark.usefixtures("town")
def test_planning_twice_plans_once(session: Session) -> None:
    add_contact(session, ContactKind.RESIDENT, "Иванов", email="ivanov@example.ru", account_number="1001")
    payload = leak(session)
    assert plan_alarm_deliveries(session, payload) == 2
    assert plan_alarm_deliveries(session, payload) == 0
    assert len(session.scalars(select(Delivery)).all()) == 2


@pytest.mark.usefixtures("town")
def test_email_arrives_at_the_smtp_server_once(session: Session) -> None:
    now = soon()
    add_contact(session, ContactKind.RESIDENT, "Иванов", email="ivanov@example.ru", account_number="1001")
    plan_alarm_deliveries(session, leak(session))
    with smtp_server() as (port, mailbox):
        transports: dict[Channel, Transport] = {
            Channel.EMAIL: SmtpTransport(Settings(smtp_host="127.0.0.1", smtp_port=port))
        }
        assert send_all(session, transports) == {"sent": 1, "retry": 0, "failed": 0}
        assert send_all(session, transports, now + timedelta(hours=1)) == {"sent": 0, "retry": 0, "failed": 0}
    [mail] = mailbox.messages
    assert mail["To"] == "ivanov@example.ru"
    delivery = session.scalar(select(Delivery).where(Delivery.channel == Channel.EMAIL))
    assert delivery is not None
    assert mail["Message-ID"] == f"<{delivery.dedupe_key.replace(':', '.')}@localhost>", "the same on every attempt"
    assert str(mail["Subject"]) == "Возможная протечка: счётчик CW-1001"
    assert "24 ч" in mail.get_content()


@pytest.mark.usefixtures("town")
def test_sms_gateway_failure_is_retried_with_backoff(session: Session) -> None:
    now = soon()
    contact = add_contact(session, ContactKind.RESIDENT, "Иванов", phone="+79990001122", account_number="1001")
    set_preference(session, contact.id, "leak", ["sms"])
    plan_alarm_deliveries(session, leak(session))
    with http_recorder() as (url, recorder):
        recorder.failures_left = 1
        transports: dict[Channel, Transport] = {
            Channel.SMS: SmsGatewayTransport(Settings(sms_gateway_url=url, sms_gateway_token="t0ken"))
        }
        assert send_all(session, transports, now) == {"sent": 0, "retry": 1, "failed": 0}
        delivery = session.scalar(select(Delivery))
        assert delivery is not None
        assert (delivery.status, delivery.next_attempt_at) == (DeliveryStatus.PENDING, now + timedelta(minutes=1))
        assert "503" in (delivery.last_error or "")
        assert send_all(session, transports, now + timedelta(seconds=30)) == {"sent": 0, "retry": 0, "failed": 0}, (
            "not due yet"
        )
        assert send_all(session, transports, now + timedelta(minutes=2)) == {"sent": 1, "retry": 0, "failed": 0}
    assert len(recorder.requests) == 2
    request = recorder.requests[-1]
    assert request["json"]["to"] == "+79990001122"
    assert request["json"]["id"] == delivery.dedupe_key
    assert request["headers"]["Authorization"] == "Bearer t0ken"


@pytest.mark.usefixtures("town")
def test_unconfigured_channel_fails_after_the_last_attempt(session: Session) -> None:
    now = soon()
    add_contact(session, ContactKind.RESIDENT, "Иванов", email="ivanov@example.ru", account_number="1001")
    plan_alarm_deliveries(session, leak(session))
    moment = now
    outcomes = []
    for _ in range(6):
        moment += timedelta(days=1)
        outcomes.append(send_all(session, {}, moment))
    assert outcomes[-1] == {"sent": 0, "retry": 0, "failed": 1}
    delivery = session.scalar(select(Delivery).where(Delivery.channel == Channel.EMAIL))
    assert delivery is not None
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 6)


@pytest.mark.usefixtures("town")
def test_bad_contacts_are_refused(session: Session) -> None:
    with pytest.raises(InvalidContact, match="needs the personal account"):
        add_contact(session, ContactKind.RESIDENT, "X")
    with pytest.raises(InvalidContact, match="no personal account"):
        add_contact(session, ContactKind.RESIDENT, "X", account_number="nope")
    for address in ("not-an-address", "bad@example.ru\nBcc: x@evil.example", "a b@example.ru", "a@b@example.ru"):
        with pytest.raises(InvalidContact, match="e-mail"):
            add_contact(session, ContactKind.RESIDENT, "X", email=address, account_number="1001")
    contact = add_contact(session, ContactKind.RESIDENT, "X", account_number="1001")
    with pytest.raises(InvalidContact, match="unknown channel"):
        set_preference(session, contact.id, "leak", ["pigeon"])
    with pytest.raises(InvalidContact, match="unknown alarm kind"):
        set_preference(session, contact.id, "fire", ["email"])


def test_worker_turns_an_alarm_into_an_email(
    scratch_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end on a committed database: verification expiring -> scheduled check raises the
    alarm -> the worker plans and sends the e-mail -> a second cycle sends nothing more."""
    with session_scope() as session:
        metered_registry(session, tmp_path)
        session.execute(
            update(Meter).where(Meter.serial == "CW-1001").values(verified_until=TODAY + timedelta(days=10))
        )
        add_contact(session, ContactKind.RESIDENT, "Иванов", email="ivanov@example.ru", account_number="1001")
    with smtp_server() as (port, mailbox):
        worker = Worker(get_engine(), settings=Settings(smtp_host="127.0.0.1", smtp_port=port))
        first = worker.run_once()
        assert first["notifications"] == {"sent": 1, "retry": 0, "failed": 0}
        second = worker.run_once()
        assert second["notifications"] == {"sent": 0, "retry": 0, "failed": 0}
    assert [str(m["Subject"]) for m in mailbox.messages] == [
        f"Срок поверки счётчика CW-1001 истекает {(TODAY + timedelta(days=10)).isoformat()}"
    ]


class _Broken:
    """A transport that trips over one particular address, as a bug or odd data would."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: Outgoing) -> None:
        if message.address.startswith("broken"):
            raise ValueError("Header values may not contain linefeed or carriage return characters")
        self.sent.append(message.address)


@pytest.mark.usefixtures("town")
def test_a_delivery_that_cannot_be_sent_fails_alone_and_is_not_repeated(session: Session) -> None:
    """Once an exception other than the channel being away stopped the batch: the deliveries
    sent before it stayed 'sending' and went out again ten minutes later."""
    now = soon()
    for address in ("a@example.ru", "broken@example.ru", "c@example.ru"):
        add_contact(session, ContactKind.RESIDENT, address, email=address, account_number="1001")
    plan_alarm_deliveries(session, leak(session))
    transport = _Broken()
    assert send_all(session, {Channel.EMAIL: transport}, now) == {"sent": 2, "retry": 0, "failed": 1}
    later = send_all(session, {Channel.EMAIL: transport}, now + timedelta(hours=1))
    assert later == {"sent": 0, "retry": 0, "failed": 0}
    assert transport.sent == ["a@example.ru", "c@example.ru"]
    failed = session.scalar(select(Delivery).where(Delivery.status == DeliveryStatus.FAILED))
    assert failed is not None
    assert failed.last_error == "ValueError: Header values may not contain linefeed or carriage return characters"
