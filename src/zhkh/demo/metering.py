"""The demo town's meters, months of residents' readings, IoT devices of every format sending
messages (over MQTT when a broker answers, otherwise over HTTP to the API), an alarm and its
notification. Deterministic: values are a function of the meter and the calendar month, so a
second run in the same month adds nothing."""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import func, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from zhkh.app import create_app
from zhkh.core.clock import utc_now
from zhkh.core.config import get_settings
from zhkh.core.db import session_factory, session_scope
from zhkh.core.importing import run_import
from zhkh.core.periods import Period, local_midnight
from zhkh.core.tabular import rows_from_records
from zhkh.identity.models import ApiToken
from zhkh.identity.service import create_token
from zhkh.metering.consumption import compute_consumption
from zhkh.metering.imports import MetersImport
from zhkh.metering.intake import IncomingReading, IntakeReport, ingest
from zhkh.metering.models import Meter
from zhkh.metering.mqtt import Broker, MqttConsumer
from zhkh.metering.service import bind_device, register_device, replace_meter, save_device_model
from zhkh.notify.models import Contact, ContactKind
from zhkh.notify.service import add_contact
from zhkh.worker import Worker

MONTHS = 6
MODELS = Path(__file__).resolve().parents[3] / "examples" / "iot" / "models.json"
WATERIUS_KEY = "DEMO0WATERIUS0KEY0000000000000001"
# Which flats carry which device (building, flat, meter kind).
CHIRPSTACK_FLAT = ("NB-001", "5", "CW")
TTS_FLAT = ("NB-001", "6", "CW")
WMBUS_FLAT = ("NB-002", "3", "HW")
WATERIUS_FLAT = ("NB-002", "4")
REPLACED_FLAT = ("NB-003", "2", "CW")


@dataclass
class MeteringReport:
    meters: str = ""
    readings: IntakeReport = field(default_factory=IntakeReport)
    transport: str = ""
    messages: dict[str, int] = field(default_factory=dict)  # sent, per format
    stored: dict[str, int] = field(default_factory=dict)  # device readings this run stored, per format
    dead_letters: int = 0
    consumption: dict[str, dict[str, int]] = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)
    notifications: dict[str, Any] = field(default_factory=dict)
    deliveries: dict[str, dict[str, int]] = field(default_factory=dict)  # channel -> status -> count


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _serial(kind: str, building: str, premise: str) -> str:
    return f"{kind}-{building[-3:]}-{premise}"


def build_meters(town: Any) -> list[dict[str, Any]]:
    """Water meters where a meter can be installed, two-zone electricity in every flat, and a
    cold water and a heat meter on every building."""
    rows: list[dict[str, Any]] = []
    for premise in town.premises:
        building, number, account = premise["building_id"], premise["premise"], premise["account"]
        rng = _rng("meter", building, number)
        installed = date(2023, 1, 1) + timedelta(days=rng.randrange(0, 700))
        if premise["meter_possible"] == "yes":
            for kind, service, years in (("CW", "cold_water", 6), ("HW", "hot_water", 4)):
                verified = installed.replace(year=installed.year + years)
                rows.append(
                    _meter_row(_serial(kind, building, number), service, building, account, 1, installed, verified)
                )
        if premise["kind"] == "residential":
            rows.append(
                _meter_row(
                    _serial("EL", building, number),
                    "electricity",
                    building,
                    account,
                    2,
                    installed,
                    installed.replace(year=installed.year + 16),
                )
            )
    # One flat's hot water meter is due for verification soon: the alarm residents get.
    due = next(r for r in rows if r["serial"] == _serial("HW", *WATERIUS_FLAT))
    due["verified_until"] = Period.of(utc_now().date()).next().day(10)
    for building in sorted({p["building_id"] for p in town.premises}):
        rows.append(
            _meter_row(
                f"ODPU-CW-{building}",
                "cold_water",
                building,
                "",
                1,
                date(2020, 9, 1),
                date(2028, 9, 1),
                digits=7,
                diameter=50,
            )
        )
        rows.append(
            _meter_row(
                f"ODPU-HEAT-{building}", "heating", building, "", 1, date(2020, 9, 1), date(2028, 9, 1), digits=7
            )
        )
    return rows


def _meter_row(
    serial: str,
    service: str,
    building: str,
    account: str,
    zones: int,
    installed: date,
    verified: date,
    *,
    digits: int | None = None,
    diameter: int | None = None,
) -> dict[str, Any]:
    return {
        "serial": serial,
        "service": service,
        "building_id": building,
        "account": account,
        "zones": zones,
        "installed_on": installed,
        "verified_until": verified,
        "digits": digits or "",
        "diameter_mm": diameter or "",
    }


def _month_index(period: Period) -> int:
    return period.year * 12 + period.month


def monthly_use(meter: dict[str, Any], residents: int, period: Period, zone: int) -> Decimal:
    rng = _rng("use", meter["serial"], _month_index(period), zone)
    people = max(residents, 1)
    if meter["service"] == "electricity":
        base = (90 + 45 * people) if zone == 1 else (35 + 15 * people)
        return Decimal(int(base * rng.uniform(0.8, 1.25) * 10)) / 10
    per_person = {"cold_water": 3.6, "hot_water": 2.4}[meter["service"]]
    return Decimal(int(per_person * people * rng.uniform(0.7, 1.3) * 1000)) / 1000


def register_value(meter: dict[str, Any], residents: int, period: Period, zone: int) -> Decimal:
    """The register at the period's reading: a start value plus every month's use since 2024."""
    value = Decimal(_rng("start", meter["serial"], zone).randrange(10, 900))
    month = Period(2024, 1)
    while month <= period:
        value += monthly_use(meter, residents, month, zone)
        month = month.next()
    return value


def residents_readings(town: Any, meters: list[dict[str, Any]], now: datetime) -> list[IncomingReading]:
    """Readings residents sent in the last months' windows: most of them, not all (a missed
    month is what billing estimates), and one typo that validation rejects."""
    zone = get_settings().zone
    residents = {(p["building_id"], p["account"]): int(p["residents"]) for p in town.premises}
    current = Period.of(now.astimezone(zone).date())
    readings: list[IncomingReading] = []
    for meter in meters:
        if not meter["account"]:
            continue
        period = current
        for _ in range(MONTHS):
            period = period.previous()
            rng = _rng("send", meter["serial"], _month_index(period))
            if rng.random() < 0.08:
                continue  # this month nobody sent the reading
            day = local_midnight(period.day(rng.randrange(17, 26)), zone) + timedelta(hours=rng.randrange(8, 22))
            for zone_number in range(1, int(meter["zones"]) + 1):
                value = register_value(meter, residents[(meter["building_id"], meter["account"])], period, zone_number)
                readings.append(IncomingReading(day, value, zone_number, meter["serial"], source="resident"))
    typo = next(r for r in readings if (r.serial or "").startswith("CW-") and r.taken_at > now - timedelta(days=40))
    readings.append(
        IncomingReading(typo.taken_at + timedelta(hours=1), typo.value / 10, 1, typo.serial, source="resident")
    )
    return readings


def building_readings(town: Any, meters: list[dict[str, Any]], now: datetime) -> list[IncomingReading]:
    """Building meters read by the operator on the last day of each month: the flats' use plus
    the common part (stairwell cleaning, losses, flats without meters)."""
    zone = get_settings().zone
    current = Period.of(now.astimezone(zone).date())
    residents = {p["account"]: int(p["residents"]) for p in town.premises}
    readings: list[IncomingReading] = []
    for building in sorted({m["building_id"] for m in meters}):
        flats = [m for m in meters if m["building_id"] == building and m["service"] == "cold_water" and m["account"]]
        period = current
        for _ in range(MONTHS):
            period = period.previous()
            water = sum((register_value(m, residents[m["account"]], period, 1) for m in flats), Decimal(0)) * Decimal(
                "1.12"
            )
            heat = Decimal(250 + _month_index(period) * 95)
            moment = local_midnight(period.last_day, zone) + timedelta(hours=20)
            readings.append(
                IncomingReading(moment, water.quantize(Decimal("0.001")), 1, f"ODPU-CW-{building}", source="operator")
            )
            readings.append(IncomingReading(moment, heat, 1, f"ODPU-HEAT-{building}", source="operator"))
    return readings


# --- devices -----------------------------------------------------------------------------------


def register_devices(session: Session) -> None:
    for name, model in json.loads(MODELS.read_text()).items():
        save_device_model(session, name, model["format"], model["mapping"])
    since = utc_now() - timedelta(days=3)
    devices = [
        ("pulse-lorawan", "70b3d57ed0000005", "chirpstack", "volume_m3", CHIRPSTACK_FLAT),
        ("pulse-lorawan-tts", "70b3d57ed0000006", "tts", "volume_m3", TTS_FLAT),
        ("iperl", "22220003", "wmbusmeters", "total_m3", WMBUS_FLAT),
    ]
    for model, external_id, fmt, channel, (building, flat, kind) in devices:
        register_device(session, model, external_id, name=f"{building} кв. {flat}")
        if not _bound(session, fmt, external_id):
            bind_device(session, fmt, external_id, channel, _serial(kind, building, flat), since=since)
    building, flat = WATERIUS_FLAT
    register_device(session, "waterius", "10099775", name=f"{building} кв. {flat}", secret=WATERIUS_KEY)
    if not _bound(session, "waterius", "10099775"):
        bind_device(session, "waterius", "10099775", "ch0", _serial("HW", building, flat), since=since)
        bind_device(session, "waterius", "10099775", "ch1", _serial("CW", building, flat), since=since)


def _bound(session: Session, fmt: str, external_id: str) -> bool:
    from zhkh.metering.models import Device, DeviceBinding

    return (
        session.scalar(
            select(DeviceBinding.id)
            .join(Device, Device.id == DeviceBinding.device_id)
            .where(Device.format == fmt, Device.external_id == external_id)
        )
        is not None
    )


def _last_value(session: Session, serial: str) -> Decimal:
    from zhkh.metering.models import Reading

    value = session.scalar(
        select(Reading.value)
        .join(Meter, Meter.id == Reading.meter_id)
        .where(Meter.serial == serial, Reading.status == "accepted", Reading.superseded_by_id.is_(None))
        .order_by(Reading.taken_at.desc())
        .limit(1)
    )
    return value or Decimal(0)


def device_messages(session: Session, now: datetime) -> list[tuple[str, str, bytes]]:
    """(format, topic suffix, payload) of each format, continuing from the meters' last values.
    The ChirpStack module sends hourly for a day with water running all the time and finally
    reports its leak flag."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    messages: list[tuple[str, str, bytes]] = []
    base = _last_value(session, _serial("CW", CHIRPSTACK_FLAT[0], CHIRPSTACK_FLAT[1]))
    for step in range(26):
        at = hour - timedelta(hours=25 - step)
        volume = base + Decimal("0.012") * (step + 1)
        event = {
            "deduplicationId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-cs-{at.isoformat()}")),
            "time": at.isoformat(),
            "deviceInfo": {"devEui": "70b3d57ed0000005", "deviceName": "nb001-kv5-cold", "applicationId": "demo"},
            "fCnt": step,
            "object": {"volume_m3": float(volume), "battery_v": 3.6, "leak": step == 25},
        }
        messages.append(("chirpstack", "application/demo/device/70b3d57ed0000005/event/up", json.dumps(event).encode()))
    tts_base = _last_value(session, _serial("CW", TTS_FLAT[0], TTS_FLAT[1]))
    for step in range(3):
        at = hour - timedelta(hours=6 * (2 - step))
        uplink = {
            "end_device_ids": {"device_id": "nb001-kv6-cold", "dev_eui": "70B3D57ED0000006"},
            "received_at": at.isoformat().replace("+00:00", "Z"),
            "uplink_message": {
                "decoded_payload": {"volume_m3": float(tts_base + Decimal("0.05") * step), "battery_v": 3.5},
                "received_at": at.isoformat().replace("+00:00", "Z"),
            },
        }
        messages.append(("tts", "v3/demo@ttn/devices/nb001-kv6-cold/up", json.dumps(uplink).encode()))
    wmbus_base = _last_value(session, _serial("HW", WMBUS_FLAT[0], WMBUS_FLAT[1]))
    for step in range(3):
        at = hour - timedelta(hours=8 * (2 - step))
        telegram = {
            "_": "telegram",
            "media": "warm water",
            "meter": "iperl",
            "name": "nb002-kv3-hot",
            "id": "22220003",
            "total_m3": float(wmbus_base + Decimal("0.04") * step),
            "timestamp": at.isoformat().replace("+00:00", "Z"),
        }
        messages.append(("wmbusmeters", "wmbusmeters/22220003", json.dumps(telegram).encode()))
    hot = _last_value(session, _serial("HW", *WATERIUS_FLAT))
    cold = _last_value(session, _serial("CW", *WATERIUS_FLAT))
    waterius = json.loads((MODELS.parent / "waterius-http.json").read_text())
    waterius.update(
        {
            "ch0": float(hot + Decimal("0.3")),
            "ch1": float(cold + Decimal("0.5")),
            "timestamp": hour.strftime("%Y-%m-%dT%H:%M:%S+0000"),
            "key": WATERIUS_KEY,
            "imp0": 9000 + hour.hour,
            "imp1": 9100 + hour.hour,
        }
    )
    messages.append(("waterius", "waterius/10099775", json.dumps(waterius).encode()))
    gateway = {
        "readings": [
            {
                "serial": f"ODPU-HEAT-{b}",
                "ts": hour.isoformat(),
                "value": str(_last_value(session, f"ODPU-HEAT-{b}") + 40),
            }
            for b in ("NB-001", "NB-002", "NB-003")
        ]
    }
    messages.append(("platform", "zhkh/readings/boiler-house", json.dumps(gateway).encode()))
    messages.append(("platform", "zhkh/readings/boiler-house", b"{broken json"))
    return messages


# --- transports --------------------------------------------------------------------------------


def broker_answers(host: str = "127.0.0.1", port: int = 1883) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def send_over_mqtt(engine: Engine, messages: list[tuple[str, str, bytes]]) -> dict[str, int]:
    """Publish to the local broker and consume with the real consumer, under a topic prefix of
    our own so nothing else on the broker is disturbed."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    prefix = f"zhkh-demo/{uuid.uuid4().hex[:8]}"
    routes = [
        (f"{prefix}/application/+/device/+/event/up", "chirpstack"),
        (f"{prefix}/v3/+/devices/+/up", "tts"),
        (f"{prefix}/wmbusmeters/#", "wmbusmeters"),
        (f"{prefix}/waterius/#", "waterius"),
        (f"{prefix}/zhkh/readings/#", "platform"),
    ]
    consumer = MqttConsumer(engine, Broker("127.0.0.1", 1883), routes, batch_wait=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    thread.start()
    if not consumer.connected.wait(10):
        stop.set()
        raise ConnectionError("the MQTT broker did not accept the consumer")
    time.sleep(0.3)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"zhkh-demo-pub-{uuid.uuid4().hex[:6]}")
    publisher.connect("127.0.0.1", 1883)
    publisher.loop_start()
    for _fmt, topic, payload in messages:
        publisher.publish(f"{prefix}/{topic}", payload, qos=1).wait_for_publish(10)
    publisher.loop_stop()
    publisher.disconnect()
    deadline = time.monotonic() + 30
    while consumer.stats.messages < len(messages) and time.monotonic() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(10)
    return _per_format(messages)


def send_over_http(engine: Engine, messages: list[tuple[str, str, bytes]]) -> dict[str, int]:
    """No broker: post the same messages to the API, served for real on a loopback port, as the
    HTTP integrations of ChirpStack, TTS and the waterius counter would."""
    with session_scope(engine) as session:
        secret = _demo_token(session)
    with _served(engine) as base, httpx.Client(base_url=base, timeout=10) as client:
        auth = {"Authorization": f"Bearer {secret}"}
        for fmt, _topic, payload in messages:
            if fmt == "waterius":
                client.post("/api/v1/waterius", content=payload, headers={"Waterius-Token": WATERIUS_KEY})
            else:
                client.post(f"/api/v1/integrations/{fmt}", content=payload, headers=auth)
    return _per_format(messages)


def _demo_token(session: Session) -> str:
    for token in session.scalars(select(ApiToken).where(ApiToken.name.like("demo-integrations-%"))):
        token.revoked_at = token.revoked_at or utc_now()
    return create_token(session, f"demo-integrations-{uuid.uuid4().hex[:6]}", ["readings:write"]).secret


@contextmanager
def _served(engine: Engine) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(session_factory=session_factory(engine)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _per_format(messages: list[tuple[str, str, bytes]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for fmt, _topic, _payload in messages:
        counts[fmt] = counts.get(fmt, 0) + 1
    return counts


# --- the whole story ---------------------------------------------------------------------------


def run_metering_demo(engine: Engine, town: Any) -> MeteringReport:
    report = MeteringReport()
    now = utc_now()
    meters = build_meters(town)
    with session_scope(engine) as session:
        importer = MetersImport()
        report.meters = run_import(
            session, rows_from_records(importer.spec, meters, "demo meters"), importer
        ).describe()
        readings = residents_readings(town, meters, now) + building_readings(town, meters, now)
        report.readings = ingest(session, readings, now=now)
        _replace_one_meter(session, now)
        register_devices(session)
        _contacts(session)
    with session_scope(engine) as session:
        messages = device_messages(session, now)
        last_reading = _last_reading_id(session)
    if broker_answers():
        report.transport = "MQTT (broker on 127.0.0.1:1883)"
        report.messages = send_over_mqtt(engine, messages)
    else:
        report.transport = "HTTP (no MQTT broker answered; the API served on loopback)"
        report.messages = send_over_http(engine, messages)
    report.notifications = Worker(engine).run_once()
    with session_scope(engine) as session:
        report.stored = _device_readings(session, after=last_reading)
        report.consumption = _consumption(session, now)
        report.alarms, report.dead_letters = _alarms_and_letters(session)
        report.deliveries = _deliveries(session)
    return report


def _last_reading_id(session: Session) -> int:
    from zhkh.metering.models import Reading

    return session.scalar(select(func.max(Reading.id))) or 0


def _device_readings(session: Session, after: int) -> dict[str, int]:
    """Readings this run stored from device messages (ids above ``after``), per format: what
    arrived, not what was sent. A device reading's source is its transport and format
    (``mqtt:chirpstack``, ``http:tts``)."""
    from zhkh.metering.models import Reading

    counts: dict[str, int] = {}
    rows = session.execute(
        select(Reading.source, func.count())
        .where(Reading.id > after, or_(Reading.source.like("mqtt:%"), Reading.source.like("http:%")))
        .group_by(Reading.source)
    )
    for source, count in rows:
        fmt = source.split(":", 1)[1]
        counts[fmt] = counts.get(fmt, 0) + count
    return counts


def _deliveries(session: Session) -> dict[str, dict[str, int]]:
    """Notifications per channel and status, as the worker left them."""
    from zhkh.notify.models import Delivery

    found: dict[str, dict[str, int]] = {}
    rows = session.execute(
        select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status)
    )
    for channel, status, count in rows:
        found.setdefault(channel.value, {})[status.value] = count
    return found


def _replace_one_meter(session: Session, now: datetime) -> None:
    """The cold water meter of one flat failed verification and was replaced last month."""
    building, flat, kind = REPLACED_FLAT
    old_serial = _serial(kind, building, flat)
    old = session.scalar(select(Meter).where(Meter.serial == old_serial))
    if old is None or old.archived_on is not None:
        return
    zone = get_settings().zone
    on = Period.of(now.astimezone(zone).date()).previous().day(10)
    new_serial = f"{old_serial}-N"
    importer = MetersImport()
    record = {
        "serial": new_serial,
        "service": "cold_water",
        "building_id": building,
        "account": _account_of(session, old),
        "zones": 1,
        "installed_on": on,
        "verified_until": on.replace(year=on.year + 6),
    }
    run_import(session, rows_from_records(importer.spec, [record], "replacement"), importer)
    final = _last_value(session, old_serial) + Decimal("1.234")
    replace_meter(session, old_serial, new_serial, on, [final], [Decimal("0")])


def _account_of(session: Session, meter: Meter) -> str:
    from zhkh.housing.models import Account

    return session.scalar(select(Account.number).where(Account.id == meter.account_id)) or ""


def _contacts(session: Session) -> None:
    """The resident of the flat with the LoRaWAN module, and the dispatcher of the manager."""
    if session.scalar(select(Contact.id).limit(1)) is not None:
        return
    from zhkh.housing.models import Account, Building, Premise

    account = session.scalar(
        select(Account.number)
        .join(Premise, Premise.id == Account.premise_id)
        .join(Building, Building.id == Premise.building_id)
        .where(Building.code == CHIRPSTACK_FLAT[0], Premise.number == CHIRPSTACK_FLAT[1])
    )
    add_contact(session, ContactKind.RESIDENT, "Жилец кв. 5", email="kv5@example.ru", account_number=account)
    add_contact(session, ContactKind.OPERATOR, "Диспетчер УК", email="dispatch@example.ru")


def _consumption(session: Session, now: datetime) -> dict[str, dict[str, int]]:
    zone = get_settings().zone
    period = Period.of(now.astimezone(zone).date())
    result = {}
    for _ in range(MONTHS):
        period = period.previous()
        result[str(period)] = compute_consumption(session, period).by_provenance
    return dict(sorted(result.items()))


def _alarms_and_letters(session: Session) -> tuple[list[str], int]:
    from zhkh.alarms.models import Alarm, AlarmState
    from zhkh.metering.models import DeadLetter

    alarms = [
        f"{a.kind.value} on {a.subject}: {a.state.value}, seen {a.occurrences} time(s)"
        for a in session.scalars(select(Alarm).where(Alarm.state != AlarmState.CLEARED).order_by(Alarm.id))
    ]
    letters = session.scalar(select(func.count()).select_from(DeadLetter)) or 0
    return alarms, letters
