"""Use cases of the meter and device registry: device models, devices and their bindings,
meter replacement, operators' corrections, and binding quarantined readings."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.periods import Period, local_date, local_midnight
from zhkh.metering.errors import (
    CorrectionRefused,
    DeviceModelNotFound,
    DeviceNotFound,
    InvalidMapping,
    MeterArchived,
    MeterNotFound,
    QuarantineNotFound,
    ReadingNotFound,
)
from zhkh.metering.intake import (
    DeviceChannel,
    IncomingReading,
    Outcome,
    Status,
    announce_readings,
    ingest,
    judge_correction,
)
from zhkh.metering.iot import FORMATS
from zhkh.metering.mapping import MappingError, ModelMapping
from zhkh.metering.models import (
    Device,
    DeviceBinding,
    DeviceModel,
    FlowLimit,
    Meter,
    QuarantinedReading,
    Reading,
    ReadingStatus,
    Service,
)
from zhkh.metering.validation import Verdict


def meter_by_serial(session: Session, serial: str) -> Meter:
    meter = session.scalar(select(Meter).where(Meter.serial == serial))
    if meter is None:
        raise MeterNotFound(f"no meter with serial {serial!r}")
    return meter


# --- devices -----------------------------------------------------------------------------------


def save_device_model(session: Session, name: str, fmt: str, mapping: Mapping[str, Any]) -> DeviceModel:
    """Create or update a device model; the mapping is checked before it is stored."""
    if fmt not in FORMATS:
        raise InvalidMapping(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        ModelMapping.from_json(mapping)
    except MappingError as exc:
        raise InvalidMapping(f"device model {name!r}: {exc}") from exc
    model = session.scalar(select(DeviceModel).where(DeviceModel.name == name))
    if model is None:
        model = DeviceModel(name=name, format=fmt, mapping=dict(mapping))
        session.add(model)
    else:
        model.format, model.mapping = fmt, dict(mapping)
    session.flush()
    return model


def register_device(
    session: Session, model_name: str, external_id: str, name: str | None = None, secret: str | None = None
) -> Device:
    """Register (or update) a device. ``secret`` is the token it presents when it posts over HTTP
    (waterius' key); only its SHA-256 is kept."""
    model = session.scalar(select(DeviceModel).where(DeviceModel.name == model_name))
    if model is None:
        raise DeviceModelNotFound(f"no device model {model_name!r}")
    external_id = normalise_external_id(model.format, external_id)
    device = session.scalar(select(Device).where(Device.format == model.format, Device.external_id == external_id))
    if device is None:
        device = Device(format=model.format, external_id=external_id, model_id=model.id, name=name)
        session.add(device)
    else:
        device.model_id, device.name = model.id, name or device.name
    if secret is not None:
        device.secret_hash = hashlib.sha256(secret.encode()).hexdigest()
    session.flush()
    return device


def normalise_external_id(fmt: str, external_id: str) -> str:
    """DevEUIs come lowercase from ChirpStack and uppercase from The Things Stack: keep one case."""
    cleaned = external_id.strip()
    return cleaned.lower() if fmt in ("chirpstack", "tts") else cleaned


def device(session: Session, fmt: str, external_id: str) -> Device:
    found = session.scalar(
        select(Device).where(Device.format == fmt, Device.external_id == normalise_external_id(fmt, external_id))
    )
    if found is None:
        raise DeviceNotFound(f"no {fmt} device {external_id!r}")
    return found


def bind_device(
    session: Session,
    fmt: str,
    external_id: str,
    channel: str,
    serial: str,
    *,
    zone: int = 1,
    since: datetime | None = None,
) -> DeviceBinding:
    """From ``since`` on, the device's ``channel`` measures meter ``serial`` (zone ``zone``). An
    earlier binding of that channel ends then; readings quarantined for it are replayed."""
    found = device(session, fmt, external_id)
    meter = meter_by_serial(session, serial)
    if meter.archived_on is not None:
        raise MeterArchived(f"meter {serial} was archived on {meter.archived_on}; bind its replacement")
    moment = since or utc_now()
    for binding in session.scalars(
        select(DeviceBinding).where(
            DeviceBinding.device_id == found.id, DeviceBinding.channel == channel, DeviceBinding.bound_to.is_(None)
        )
    ):
        binding.bound_to = moment
    binding = DeviceBinding(device_id=found.id, channel=channel, meter_id=meter.id, zone=zone, bound_from=moment)
    session.add(binding)
    meter.automatic = True
    session.flush()
    replay_quarantine(session, fmt, found.external_id, channel)
    return binding


def unbind_device(session: Session, fmt: str, external_id: str, channel: str, at: datetime | None = None) -> int:
    """End the device channel's binding (the device was taken away or broke); returns how many
    bindings ended. Its later readings are quarantined until it is bound again, and a meter no
    device measures any more is read by people again (``automatic`` is off)."""
    found = device(session, fmt, external_id)
    moment = at or utc_now()
    ended = 0
    meter_ids: set[int] = set()
    for binding in session.scalars(
        select(DeviceBinding).where(
            DeviceBinding.device_id == found.id, DeviceBinding.channel == channel, DeviceBinding.bound_to.is_(None)
        )
    ):
        binding.bound_to = moment
        meter_ids.add(binding.meter_id)
        ended += 1
    session.flush()
    for meter in session.scalars(select(Meter).where(Meter.automatic.is_(True), Meter.id.in_(meter_ids))):
        still_bound = select(DeviceBinding.id).where(
            DeviceBinding.meter_id == meter.id, DeviceBinding.bound_to.is_(None)
        )
        meter.automatic = session.scalar(still_bound.exists().select()) or False
    session.flush()
    return ended


def set_flow_limit(session: Session, service: Service, diameter_mm: int | None, max_per_hour: Decimal) -> FlowLimit:
    """The most a meter of ``service`` (and pipe diameter) can pass in an hour; readings that
    imply more are rejected as impossible jumps."""
    if max_per_hour <= 0:
        raise InvalidMapping(f"a flow limit must be positive, got {max_per_hour}")
    limit = session.scalar(
        select(FlowLimit).where(FlowLimit.service == service, FlowLimit.diameter_mm.is_not_distinct_from(diameter_mm))
    )
    if limit is None:
        limit = FlowLimit(service=service, diameter_mm=diameter_mm, max_per_hour=max_per_hour)
        session.add(limit)
    else:
        limit.max_per_hour = max_per_hour
    session.flush()
    return limit


def replay_quarantine(session: Session, fmt: str, external_id: str, channel: str | None = None) -> list[Outcome]:
    """Run a device's quarantined readings (of one channel, if given) through the pipeline
    again, after it was bound. What still has no meter stays in quarantine, as the same row."""
    statement = (
        select(QuarantinedReading)
        .where(
            QuarantinedReading.device_format == fmt,
            QuarantinedReading.device_id == external_id,
            QuarantinedReading.resolved_at.is_(None),
        )
        .order_by(QuarantinedReading.taken_at)
    )
    if channel is not None:
        statement = statement.where(QuarantinedReading.channel == channel)
    waiting = list(session.scalars(statement))
    incoming = [
        IncomingReading(
            q.taken_at,
            q.value,
            q.zone,
            device=DeviceChannel(fmt, external_id, q.channel or ""),
            source=q.source,
            source_ref=f"quarantine:{q.id}",
        )
        for q in waiting
    ]
    return _resolve_quarantined(session, waiting, ingest(session, incoming).outcomes)


def bind_quarantined(session: Session, quarantine_id: int, serial: str, zone: int | None = None) -> Outcome:
    """Give a quarantined reading its meter and run it through the pipeline."""
    held = session.get(QuarantinedReading, quarantine_id)
    if held is None or held.resolved_at is not None:
        raise QuarantineNotFound(f"no unresolved quarantined reading {quarantine_id}")
    meter_by_serial(session, serial)
    incoming = IncomingReading(
        held.taken_at, held.value, zone or held.zone, serial, source=held.source, source_ref=f"quarantine:{held.id}"
    )
    return _resolve_quarantined(session, [held], ingest(session, [incoming]).outcomes)[0]


def _resolve_quarantined(
    session: Session, held: Sequence[QuarantinedReading], outcomes: list[Outcome]
) -> list[Outcome]:
    now = utc_now()
    for item, outcome in zip(held, outcomes, strict=True):
        if outcome.status is not Status.QUARANTINED:  # stored, or found stored already
            item.resolved_reading_id, item.resolved_at = outcome.reading_id, now
    session.flush()
    return outcomes


# --- meters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Replacement:
    old: Meter
    new: Meter
    final: list[Outcome]
    initial: list[Outcome]


def replace_meter(
    session: Session,
    old_serial: str,
    new_serial: str,
    on: date,
    final: Sequence[Decimal],
    initial: Sequence[Decimal],
    at: datetime | None = None,
) -> Replacement:
    """Meter ``old_serial`` was taken off on ``on`` (at the moment ``at`` of that day if given,
    otherwise at its start) showing ``final`` (one value per zone) and ``new_serial`` (already
    registered, for the same service and place) put on showing ``initial``. Both histories stay;
    the old meter is archived and points to its successor; its device bindings move to the new
    meter."""
    old, new = meter_by_serial(session, old_serial), meter_by_serial(session, new_serial)
    if old.archived_on is not None:
        raise MeterArchived(f"meter {old_serial} was already archived on {old.archived_on}")
    _check_successor(old, new)
    zone_info = get_settings().zone
    if at is not None and local_date(at, zone_info) != on:
        raise CorrectionRefused(f"the moment of replacement {at.isoformat()} is not on {on.isoformat()}")
    if len(final) != old.zones or len(initial) != new.zones:
        raise CorrectionRefused(
            f"give one final value per zone of {old_serial} ({old.zones}) and one initial value per zone of "
            f"{new_serial} ({new.zones})"
        )
    moment = at or local_midnight(on, zone_info)
    final_outcomes = ingest(
        session,
        [IncomingReading(moment, value, zone, old_serial, source="removal") for zone, value in enumerate(final, 1)],
    ).outcomes
    initial_outcomes = ingest(
        session,
        [
            IncomingReading(moment, value, zone, new_serial, source="installation")
            for zone, value in enumerate(initial, 1)
        ],
    ).outcomes
    for outcome in final_outcomes + initial_outcomes:
        if outcome.status not in (Status.ACCEPTED, Status.DUPLICATE):
            raise CorrectionRefused(f"replacement reading refused: {outcome.detail}")
    old.archived_on, old.replaced_by_id = on, new.id
    for binding in session.scalars(
        select(DeviceBinding).where(DeviceBinding.meter_id == old.id, DeviceBinding.bound_to.is_(None))
    ):
        binding.bound_to = moment
        session.add(
            DeviceBinding(
                device_id=binding.device_id,
                channel=binding.channel,
                meter_id=new.id,
                zone=binding.zone,
                bound_from=moment,
            )
        )
        new.automatic = True
    session.flush()
    return Replacement(old, new, final_outcomes, initial_outcomes)


def _check_successor(old: Meter, new: Meter) -> None:
    """The new meter measures what the old one did: same service, same flat or building."""
    if new.id == old.id or new.archived_on is not None:
        raise CorrectionRefused(f"meter {new.serial} cannot replace {old.serial}: it is the same or archived meter")
    for what, before, after in (
        ("service", old.service, new.service),
        ("kind (flat or building meter)", old.scope, new.scope),
        ("building", old.building_id, new.building_id),
        ("personal account", old.account_id, new.account_id),
    ):
        if before != after:
            raise CorrectionRefused(
                f"meter {new.serial} cannot replace {old.serial}: its {what} differs; register it for the same one"
            )


def correct_reading(session: Session, reading_id: int, value: Decimal, reason: str) -> Reading:
    """An operator's correction: a new accepted reading at the same moment that supersedes the
    original, which stays as it was. A rejected reading can be accepted this way too."""
    original = session.get(Reading, reading_id)
    if original is None:
        raise ReadingNotFound(f"no reading {reading_id}")
    if original.superseded_by_id is not None:
        raise CorrectionRefused(f"reading {reading_id} was already corrected by reading {original.superseded_by_id}")
    if not reason.strip():
        raise CorrectionRefused("a correction needs its reason")
    if value == original.value and original.status is ReadingStatus.ACCEPTED:
        raise CorrectionRefused(f"reading {reading_id} already is {value}")
    decision = judge_correction(session, original, value)
    if decision.verdict is not Verdict.ACCEPTED:
        raise CorrectionRefused(f"{value} cannot replace reading {reading_id}: {decision.detail}")
    correction = Reading(
        meter_id=original.meter_id,
        zone=original.zone,
        taken_at=original.taken_at,
        value=value,
        status=ReadingStatus.ACCEPTED,
        detail=f"corrected by an operator: {reason.strip()}",
        source="operator",
        source_ref=f"correction:{original.id}",
        corrects_id=original.id,
    )
    session.add(correction)
    session.flush()
    original.superseded_by_id = correction.id
    session.flush()
    zone = get_settings().zone
    announce_readings(
        session, [original.meter_id], {original.meter_id: str(Period.of(local_date(original.taken_at, zone)))}
    )
    return correction
