"""Device messages from MQTT or HTTP into the reading pipeline: parse, map fields to channels by
the device's model, ingest the readings, raise or clear the alarms the device reports, and put
whatever cannot be read into the dead-letter table with its raw bytes and the reason."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from zhkh.alarms.models import AlarmKind
from zhkh.alarms.service import clear_alarm, open_alarms, raise_alarm
from zhkh.metering.intake import DeviceChannel, IncomingReading, Outcome, ingest
from zhkh.metering.iot import DeviceMessage, MessageError, Parsed, parse_message
from zhkh.metering.mapping import ModelMapping
from zhkh.metering.models import DeadLetter, Device, DeviceBinding, DeviceModel, Meter

log = logging.getLogger("zhkh.metering.messages")


class MessageStatus(StrEnum):
    PROCESSED = "processed"  # its readings went through the pipeline (each with its own outcome)
    IGNORED = "ignored"  # well formed, but carries no reading (another event type, a retained replay)
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True, slots=True)
class RawMessage:
    transport: str  # mqtt, http
    format: str
    topic: str
    payload: bytes
    received_at: datetime
    retained: bool = False


@dataclass
class MessageResult:
    status: MessageStatus
    reason: str | None = None
    readings: list[Outcome] = field(default_factory=list)


@dataclass
class _Pending:
    readings: list[IncomingReading] = field(default_factory=list)
    flags: list[tuple[Device, dict[str, bool], datetime]] = field(default_factory=list)


def process_or_keep(session: Session, message: RawMessage) -> MessageResult:
    """Handle one message in a savepoint; should the pipeline fail on it for any reason but the
    database being away, it is rolled back and kept as a dead letter, so nothing is lost and the
    sender gets an answer rather than a crash."""
    try:
        with session.begin_nested():
            return process_messages(session, [message])[0]
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        log.exception("a %s message on %s could not be processed", message.format, message.topic)
        return dead_letter(session, message, f"could not be processed ({type(exc).__name__}): {str(exc)[:300]}")


def process_messages(session: Session, messages: Sequence[RawMessage]) -> list[MessageResult]:
    """Handle a batch of messages in the caller's transaction; one result per message, in order."""
    results: list[MessageResult] = []
    parsed: list[tuple[int, Parsed]] = []
    for index, message in enumerate(messages):
        try:
            outcome = parse_message(
                message.format, message.topic, message.payload, message.received_at, retained=message.retained
            )
        except MessageError as exc:
            results.append(dead_letter(session, message, str(exc)))
            continue
        results.append(MessageResult(MessageStatus.IGNORED, outcome.ignored))
        parsed.append((index, outcome))

    devices = _devices(session, [d for _, p in parsed for d in p.devices])
    pending = _Pending()
    owners: list[tuple[int, int]] = []  # (message index, number of its readings)
    for index, outcome in parsed:
        message = messages[index]
        try:
            readings = _readings_of(outcome, devices, message, pending)
        except (ValueError, ArithmeticError) as exc:  # MessageError, MalformedReading, a mapped value
            results[index] = dead_letter(session, message, str(exc))
            continue
        if readings or outcome.devices:
            results[index] = MessageResult(MessageStatus.PROCESSED)
        pending.readings += readings
        owners.append((index, len(readings)))

    outcomes = iter(ingest(session, pending.readings).outcomes)
    for index, count in owners:
        results[index].readings = [next(outcomes) for _ in range(count)]
    _device_alarms(session, pending.flags)
    return results


def _readings_of(
    outcome: Parsed, devices: dict[tuple[str, str], tuple[Device, ModelMapping]], message: RawMessage, pending: _Pending
) -> list[IncomingReading]:
    source = f"{message.transport}:{message.format}"
    readings = [
        IncomingReading(r.taken_at, r.value, r.zone, r.serial, source=source, source_ref=message.topic[:200])
        for r in outcome.serial_readings
    ]
    for device_message in outcome.devices:
        known = devices.get((device_message.format, device_message.external_id))
        if known is None:
            raise MessageError(
                f"unknown {device_message.format} device {device_message.external_id!r}; register it first"
            )
        device, mapping = known
        try:
            values = mapping.readings(device_message.fields)
        except ValueError as exc:
            raise MessageError(f"device {device_message.external_id}: {exc}") from exc
        reference = (device_message.message_id or message.topic)[:200]
        readings += [
            IncomingReading(
                device_message.taken_at,
                value,
                device=DeviceChannel(device_message.format, device_message.external_id, channel),
                source=source,
                source_ref=reference,
            )
            for channel, value in values.items()
        ]
        flags = mapping.raised_flags(device_message.fields)
        if flags:
            pending.flags.append((device, flags, device_message.taken_at))
    return readings


def _devices(session: Session, messages: Sequence[DeviceMessage]) -> dict[tuple[str, str], tuple[Device, ModelMapping]]:
    wanted = {(m.format, m.external_id) for m in messages}
    if not wanted:
        return {}
    rows = session.execute(
        select(Device, DeviceModel.mapping)
        .join(DeviceModel, DeviceModel.id == Device.model_id)
        .where(Device.external_id.in_({external for _, external in wanted}))
    )
    return {
        (device.format, device.external_id): (device, ModelMapping.from_json(mapping))
        for device, mapping in rows
        if (device.format, device.external_id) in wanted
    }


def _device_alarms(session: Session, flags: list[tuple[Device, dict[str, bool], datetime]]) -> None:
    """Flags a device reports (tamper, magnet, low battery, leak) raise an alarm, addressed to the
    premises of the meter it is bound to; a flag reported off clears it. Tamper, magnet and
    battery are about the device; a leak is about the water, so it is the meter's alarm, the
    same one the flow rule raises (one leak, one notification). One query finds the open
    alarms, so a batch of quiet devices costs no more."""
    if not flags:
        return
    places = _places(session, {device.id for device, _, _ in flags})
    wanted = [
        (device, AlarmKind(kind), raised, at, _subject(device, kind, places.get(device.id)))
        for device, states, at in flags
        for kind, raised in states.items()
    ]
    already_open = {
        (alarm.kind.value, alarm.subject) for alarm in open_alarms(session, subjects={w[4] for w in wanted})
    }
    for device, kind, raised, at, subject in wanted:
        building_id, account_id, serial = places.get(device.id, (None, None, None))
        if raised:
            details: dict[str, Any] = {
                "device": device.external_id,
                "format": device.format,
                "meter": serial,
                "reported_by": "device",
            }
            raise_alarm(session, kind, subject, building_id=building_id, account_id=account_id, details=details, at=at)
            already_open.add((kind.value, subject))
        elif (kind.value, subject) in already_open:
            clear_alarm(session, kind, subject, at)
            already_open.discard((kind.value, subject))


def _subject(device: Device, kind: str, place: tuple[int, int | None, str] | None) -> str:
    if kind == AlarmKind.LEAK and place is not None:
        return f"meter:{place[2]}"
    return f"device:{device.format}:{device.external_id}"


def _places(session: Session, device_ids: set[int]) -> dict[int, tuple[int, int | None, str]]:
    rows = session.execute(
        select(DeviceBinding.device_id, Meter.building_id, Meter.account_id, Meter.serial)
        .join(Meter, Meter.id == DeviceBinding.meter_id)
        .where(DeviceBinding.device_id.in_(device_ids), DeviceBinding.bound_to.is_(None))
    )
    return {row.device_id: (row.building_id, row.account_id, row.serial) for row in rows}


def dead_letter(session: Session, message: RawMessage, reason: str) -> MessageResult:
    """Keep ``message`` as it came, with why it could not be used, for an operator to replay. The
    same message again (a redelivery) counts as one more occurrence of the same dead letter."""
    dialect = session.get_bind().dialect.name
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(DeadLetter).values(
        transport=message.transport,
        topic=message.topic[:500],
        payload=message.payload,
        payload_sha256=hashlib.sha256(message.payload).hexdigest(),
        reason=reason,
        received_at=message.received_at,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["transport", "topic", "payload_sha256"],
            set_={"occurrences": DeadLetter.occurrences + 1, "last_received_at": statement.excluded.received_at},
        )
    )
    return MessageResult(MessageStatus.DEAD_LETTER, reason)
