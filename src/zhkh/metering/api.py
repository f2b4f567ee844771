"""The metering API: readings in batches, a resident's own meters and readings, waterius
counters posting over HTTP, meters, consumption and alarms."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.alarms.models import Alarm, AlarmState
from zhkh.alarms.service import acknowledge, clear_by_hand
from zhkh.core.api import Page, PageRequest, SessionDep, inline_schema
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.errors import InvalidInput, NotFound, Unauthorized
from zhkh.core.periods import local_date, local_midnight
from zhkh.housing.models import Account, Building, Organisation, Premise
from zhkh.identity.api import require_scope, resident_account
from zhkh.identity.models import ApiToken
from zhkh.metering.errors import MeterNotFound, OutsideReadingWindow, TooManyReadings
from zhkh.metering.intake import IncomingReading, Outcome, Status, ingest
from zhkh.metering.iot import FORMATS
from zhkh.metering.messages import MessageStatus, RawMessage, dead_letter, process_or_keep
from zhkh.metering.models import Consumption, Device, Meter, Reading
from zhkh.metering.schemas import (
    MAX_BATCH,
    AlarmOut,
    ConsumptionOut,
    CorrectionIn,
    LastReading,
    MeterOut,
    ReadingBatchIn,
    ReadingBatchOut,
    ReadingOut,
    ReadingResult,
    ResidentReadingIn,
)
from zhkh.metering.service import correct_reading, meter_by_serial
from zhkh.metering.validation import EARLIEST_READING, LATEST_READING, MalformedReading, well_formed_name

router = APIRouter(prefix="/api/v1", tags=["metering"])
Writer = Annotated[ApiToken, Depends(require_scope("readings:write"))]
Reader = Annotated[ApiToken, Depends(require_scope("metering:read"))]
Resident = Annotated[ApiToken, Depends(require_scope("resident"))]
AlarmManager = Annotated[ApiToken, Depends(require_scope("alarms:manage"))]
_SEVERITY = {Status.ACCEPTED: 0, Status.DUPLICATE: 1, Status.QUARANTINED: 2, Status.REJECTED: 3}


class ReadingRejected(InvalidInput):
    status_code = 422


# --- batches -----------------------------------------------------------------------------------


def _moment(value: datetime | date) -> datetime:
    zone = get_settings().zone
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    if not EARLIEST_READING.year <= value.year < LATEST_READING.year:
        raise MalformedReading(f"taken_at must be between 1970 and 2099, got {value.isoformat()}")
    return local_midnight(value, zone)


def _zone_readings(serial: str, taken_at: datetime, value: Any, values: Any, source: str) -> list[IncomingReading]:
    """One reading per zone: ``value`` for a single-rate meter or ``values`` keyed t1 to t3.
    IncomingReading checks the value, the time and the serial."""
    if (value is None) == (values is None):
        raise MalformedReading("give value or values, exactly one")
    if value is not None:
        return [IncomingReading(taken_at, _number(value, "value"), 1, serial, source=source)]
    if not isinstance(values, dict) or not values or set(values) - {"t1", "t2", "t3"}:
        raise MalformedReading("values are keyed t1, t2, t3")
    return [
        IncomingReading(taken_at, _number(number, f"values.{key}"), int(key[1]), serial, source=source)
        for key, number in sorted(values.items())
    ]


def _number(value: Any, what: str) -> Decimal:
    """A JSON number or numeric string as an exact Decimal (a float by its shortest text)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise MalformedReading(f"{what} must be a number or a numeric string")
    try:
        return Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise MalformedReading(f"{what} must be a number, got {str(value)[:40]!r}") from None


def _taken_at(value: Any) -> datetime:
    """An ISO date (local midnight) or time (local when it has no offset)."""
    if not isinstance(value, str):
        raise MalformedReading("taken_at must be an ISO date or time as a string")
    try:
        moment: datetime | date = datetime.fromisoformat(value) if len(value) > 10 else date.fromisoformat(value)
    except ValueError:
        raise MalformedReading(f"taken_at is not an ISO date or time: {value[:40]!r}") from None
    return _moment(moment)


def _batch(body: bytes) -> list[list[IncomingReading]]:
    """The readings of a batch's JSON body (the shape of ``ReadingBatchIn``), each item's per
    zone; ``ReadingRejected`` naming the first item no reading can be. Parsed by hand with
    orjson: pydantic's validation of 1,000 items was a fifth of an API worker's time."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ReadingRejected(f"the body is not JSON: {exc}") from None
    items = document.get("readings") if isinstance(document, dict) else None
    if not isinstance(items, list) or not items:
        raise ReadingRejected('the body must be {"readings": [...]} with at least one reading')
    if len(items) > MAX_BATCH:
        raise TooManyReadings(f"at most {MAX_BATCH} readings per request, got {len(items)}")
    expanded: list[list[IncomingReading]] = []
    for position, item in enumerate(items):
        try:
            expanded.append(_item_readings(item))
        except MalformedReading as exc:
            raise ReadingRejected(f"reading {position} cannot be used: {exc}") from exc
    return expanded


def _item_readings(item: Any) -> list[IncomingReading]:
    if not isinstance(item, dict):
        raise MalformedReading("a reading must be a JSON object")
    serial, source = item.get("serial"), item.get("source")
    if not isinstance(serial, str):
        raise MalformedReading("serial must be a string")
    if source is not None and (not isinstance(source, str) or len(source) > _MAX_SOURCE):
        raise MalformedReading(f"source must be a string of at most {_MAX_SOURCE} characters")
    return _zone_readings(
        serial, _taken_at(item.get("taken_at")), item.get("value"), item.get("values"), source or "api"
    )


def _result(index: int, zones: list[int], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """A reading's result as plain, compact data (the shape of ReadingResult, empty fields left
    out): a batch of 10,000 answers is built and serialised without a model object per reading."""
    worst = outcomes[0] if len(outcomes) == 1 else max(outcomes, key=lambda o: _SEVERITY[o.status])
    result: dict[str, Any] = {"index": index, "status": worst.status.value}
    if worst.reason:
        result["reason"], result["detail"] = worst.reason, worst.detail
    if len(outcomes) == 1:
        if worst.reading_id is not None:
            result["reading_id"] = worst.reading_id
        if worst.flags:
            result["flags"] = list(worst.flags)
        return result
    result["zones"] = [
        {
            k: v
            for k, v in (
                ("zone", z),
                ("status", o.status.value),
                ("reason", o.reason),
                ("detail", o.detail),
                ("reading_id", o.reading_id),
                ("flags", list(o.flags)),
            )
            if v not in (None, [])
        }
        for z, o in zip(zones, outcomes, strict=True)
    ]
    return result


_MAX_SOURCE = 40
_BATCH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": inline_schema(ReadingBatchIn.model_json_schema())}},
}


async def _body(request: Request) -> bytes:
    """The whole request body, received before the token is checked and a session opened, so a
    slow upload does not hold a database connection idle in its transaction."""
    return await request.body()


@router.post("/readings", response_model=ReadingBatchOut, openapi_extra={"requestBody": _BATCH_BODY})
async def post_readings(body: Annotated[bytes, Depends(_body)], session: SessionDep, token: Writer) -> Response:
    """Submit up to 10,000 readings (the body is ``ReadingBatchIn``). Each is judged on its own:
    the answer says, per reading, accepted, duplicate, rejected (with the reason) or quarantined
    (no such live meter)."""
    # Parsed here, on the event loop (about 3 ms per 1,000 readings), and stored in the thread
    # pool: parsing in the pool too measured 6-8 % slower in bench/readings.py http; the price
    # is that the worker's other requests wait those milliseconds.
    expanded = _batch(body)
    return await run_in_threadpool(_store_batch, session, expanded)


def _store_batch(session: Session, expanded: list[list[IncomingReading]]) -> Response:
    outcomes = ingest(session, [r for readings in expanded for r in readings]).outcomes
    results, position = [], 0
    for index, readings in enumerate(expanded):
        results.append(_result(index, [r.zone for r in readings], outcomes[position : position + len(readings)]))
        position += len(readings)
    summary: dict[str, int] = {}
    for result in results:
        summary[result["status"]] = summary.get(result["status"], 0) + 1
    # orjson: the answer to 10,000 readings is serialised in a fifth of the time.
    return Response(orjson.dumps({"summary": summary, "results": results}), media_type="application/json")


@router.post("/readings/{reading_id}/corrections", response_model=ReadingOut, status_code=201)
def post_correction(reading_id: int, correction: CorrectionIn, session: SessionDep, token: Writer) -> ReadingOut:
    """Correct a reading: a new reading supersedes it; the original stays."""
    fixed = correct_reading(session, reading_id, correction.value, f"{correction.reason} ({token.name})")
    return ReadingOut.model_validate(fixed, from_attributes=True)


# --- meters ------------------------------------------------------------------------------------


def _meter_out(session: SessionDep, meter: Meter) -> MeterOut:
    building = session.get(Building, meter.building_id)
    account = session.get(Account, meter.account_id) if meter.account_id else None
    live = (Reading.meter_id == meter.id, Reading.status == "accepted", Reading.superseded_by_id.is_(None))
    # The newest reading of each zone (zones are sent separately: t1 may be newer than t2).
    last = [
        row
        for zone in range(1, meter.zones + 1)
        for row in session.execute(
            select(Reading.zone, Reading.taken_at, Reading.value)
            .where(*live, Reading.zone == zone)
            .order_by(Reading.taken_at.desc())
            .limit(1)
        )
    ]
    return MeterOut(
        serial=meter.serial,
        service=meter.service,
        scope=meter.scope,
        building_id=building.code if building else "",
        account=account.number if account else None,
        zones=meter.zones,
        digits=meter.digits,
        installed_on=meter.installed_on,
        verified_until=meter.verified_until,
        archived_on=meter.archived_on,
        automatic=meter.automatic,
        last_readings=[LastReading(zone=z, taken_at=t, value=v) for z, t, v in last],
    )


@router.get("/meters/{serial}", response_model=MeterOut)
def get_meter(serial: str, session: SessionDep, token: Reader) -> MeterOut:
    return _meter_out(session, meter_by_serial(session, serial))


@router.get("/meters/{serial}/readings", response_model=Page[ReadingOut])
def get_meter_readings(
    serial: str, session: SessionDep, token: Reader, page: Annotated[PageRequest, Depends()]
) -> Page[ReadingOut]:
    """Every reading of the meter, rejected and superseded ones included, oldest first."""
    meter = meter_by_serial(session, serial)
    statement = select(Reading.id, Reading).where(Reading.meter_id == meter.id)
    rows, cursor = page.fetch(session, statement, Reading.id)
    return Page(
        items=[ReadingOut.model_validate(row.Reading, from_attributes=True) for row in rows], next_cursor=cursor
    )


@router.get("/meters/{serial}/consumption", response_model=list[ConsumptionOut])
def get_meter_consumption(serial: str, session: SessionDep, token: Reader) -> list[ConsumptionOut]:
    meter = meter_by_serial(session, serial)
    rows = session.scalars(
        select(Consumption).where(Consumption.meter_id == meter.id).order_by(Consumption.period, Consumption.zone)
    )
    return [
        ConsumptionOut(
            period=row.period.strftime("%Y-%m"),
            zone=row.zone,
            provenance=row.provenance,
            start_value=row.start_value,
            start_at=row.start_at,
            end_value=row.end_value,
            end_at=row.end_at,
            volume=row.volume,
        )
        for row in rows
    ]


# --- alarms ------------------------------------------------------------------------------------


@router.get("/alarms", response_model=list[AlarmOut])
def get_alarms(
    session: SessionDep, token: Reader, building_id: str | None = None, include_cleared: bool = False
) -> list[AlarmOut]:
    statement = select(Alarm).order_by(Alarm.raised_at.desc()).limit(1000)
    if not include_cleared:
        statement = statement.where(Alarm.state != AlarmState.CLEARED)
    if building_id is not None:
        statement = statement.join(Building, Building.id == Alarm.building_id).where(Building.code == building_id)
    return [AlarmOut.model_validate(alarm, from_attributes=True) for alarm in session.scalars(statement)]


@router.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmOut)
def post_acknowledge(alarm_id: int, session: SessionDep, token: AlarmManager) -> AlarmOut:
    return AlarmOut.model_validate(acknowledge(session, alarm_id, token.name), from_attributes=True)


@router.post("/alarms/{alarm_id}/clear", response_model=AlarmOut)
def post_clear(alarm_id: int, session: SessionDep, token: AlarmManager) -> AlarmOut:
    return AlarmOut.model_validate(clear_by_hand(session, alarm_id), from_attributes=True)


# --- residents ---------------------------------------------------------------------------------


def _account(session: SessionDep, token: ApiToken) -> Account:
    number = resident_account(token)
    account = session.scalar(select(Account).where(Account.number == number))
    if account is None:
        raise NotFound(f"personal account {number} no longer exists")
    return account


@router.get("/me/meters", response_model=list[MeterOut])
def get_my_meters(session: SessionDep, token: Resident) -> list[MeterOut]:
    """The resident's meters with their latest readings."""
    account = _account(session, token)
    meters = session.scalars(
        select(Meter).where(Meter.account_id == account.id, Meter.archived_on.is_(None)).order_by(Meter.serial)
    )
    return [_meter_out(session, meter) for meter in meters]


@router.post(
    "/me/readings",
    response_model=ReadingResult,
    status_code=201,
    responses={422: {"description": "rejected: the reason is in detail; the reading is kept as rejected"}},
)
def post_my_reading(reading: ResidentReadingIn, session: SessionDep, token: Resident) -> ReadingResult | JSONResponse:
    """Submit a reading of one's own meter, within the manager's reading window."""
    account = _account(session, token)
    meter = session.scalar(select(Meter).where(Meter.serial == reading.serial, Meter.account_id == account.id))
    if meter is None:
        raise MeterNotFound(f"meter {reading.serial} is not a meter of account {account.number}")
    _check_window(session, account)
    if reading.value is not None and meter.zones > 1:
        zones = ", ".join(f"t{zone}" for zone in range(1, meter.zones + 1))
        refusal = ReadingRejected(f"meter {meter.serial} has {meter.zones} zones: give values for {zones}")
        return JSONResponse(refusal.to_dict(), status_code=refusal.status_code)
    readings = _zone_readings(reading.serial, utc_now(), reading.value, reading.values, "resident")
    result = ReadingResult.model_validate(_result(0, [r.zone for r in readings], ingest(session, readings).outcomes))
    if result.status == Status.REJECTED:
        # Answered, not raised: raising would roll back, and a rejected reading is kept too.
        refusal = ReadingRejected(result.detail or "the reading was not accepted")
        return JSONResponse(refusal.to_dict(), status_code=refusal.status_code)
    return result


def _check_window(session: SessionDep, account: Account) -> None:
    window = session.execute(
        select(Organisation.reading_window_from, Organisation.reading_window_to)
        .join(Building, Building.manager_id == Organisation.id)
        .join(Premise, Premise.building_id == Building.id)
        .where(Premise.id == account.premise_id)
    ).one_or_none()
    first, last = window if window is not None else (15, 25)
    today = local_date(utc_now(), get_settings().zone)
    if not first <= today.day <= last:
        raise OutsideReadingWindow(
            f"readings are taken from the {first}th to the {last}th of the month; today is the {today.day}th"
        )


# --- HTTP integrations of LoRaWAN servers and decoders --------------------------------------------


@router.post("/integrations/{fmt}", tags=["devices"])
async def post_integration(
    fmt: str, request: Request, session: SessionDep, token: Writer, event: str = "up"
) -> JSONResponse:
    """Device messages pushed over HTTP instead of MQTT: ChirpStack's HTTP integration (it adds
    ``?event=up``), The Things Stack webhooks, wmbusmeters with curl, the platform's JSON. The
    body is the same message the MQTT integration would publish; set the integration's
    Authorization header to a token with the readings:write scope."""
    if fmt not in FORMATS or fmt == "waterius":
        raise InvalidInput(
            f"unknown integration {fmt!r}; known: chirpstack, tts, wmbusmeters, platform (waterius: /api/v1/waterius)"
        )
    topic = (
        f"/api/v1/integrations/{fmt}/event/{event}" if fmt == "chirpstack" else f"/api/v1/integrations/{fmt}/{event}"
    )
    body = await request.body()
    result = process_or_keep(session, RawMessage("http", fmt, topic, body, utc_now()))
    if result.status is MessageStatus.DEAD_LETTER:
        return JSONResponse({"error": "InvalidMessage", "detail": result.reason}, status_code=400)
    return JSONResponse(
        {
            "status": result.status.value,
            "readings": [{"status": o.status.value, "reason": o.reason} for o in result.readings],
        },
        status_code=200,
    )


# --- waterius ----------------------------------------------------------------------------------


@router.post("/waterius", tags=["devices"])
async def post_waterius(
    request: Request, session: SessionDep, waterius_token: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Where a waterius counter posts (set its HTTP URL to this address). It retries on anything
    but 200, so a stored reading and a repeat both get 200. The device is known by its esp_id
    and proves itself with the key it sends as Waterius-Token."""
    body = await request.body()
    received_at = utc_now()
    try:
        document: Any = json.loads(body)
        esp_id = well_formed_name(str(document["esp_id"]), "esp_id")
    except (ValueError, KeyError, TypeError, RecursionError):
        _dead(session, body, received_at, "not a waterius JSON body with an esp_id")
        return JSONResponse(
            {"error": "InvalidMessage", "detail": "not a waterius JSON body with an esp_id"}, status_code=400
        )
    device = session.scalar(select(Device).where(Device.format == "waterius", Device.external_id == esp_id))
    if device is None:
        _dead(session, body, received_at, f"unknown waterius device {esp_id}")
        return JSONResponse(
            {"error": "UnknownDevice", "detail": f"no waterius device {esp_id} is registered"}, status_code=404
        )
    if device.secret_hash is None or hashlib.sha256((waterius_token or "").encode()).hexdigest() != device.secret_hash:
        raise Unauthorized(f"the Waterius-Token does not match device {esp_id}")
    result = process_or_keep(session, RawMessage("http", "waterius", "/api/v1/waterius", body, received_at))
    if result.status is MessageStatus.DEAD_LETTER:
        return JSONResponse({"error": "InvalidMessage", "detail": result.reason}, status_code=400)
    statuses = sorted({outcome.status.value for outcome in result.readings})
    return JSONResponse({"status": "ok", "readings": statuses}, status_code=200)


def _dead(session: SessionDep, body: bytes, received_at: datetime, reason: str) -> None:
    dead_letter(session, RawMessage("http", "waterius", "/api/v1/waterius", body, received_at), reason)
