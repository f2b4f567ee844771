"""``zhkh devices | meters | readings | consumption | ingest``: metering from the command line."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.table import Table

from zhkh.cli.output import console
from zhkh.core.errors import InvalidInput
from zhkh.core.periods import Period
from zhkh.metering.iot import DEFAULT_ROUTES

# The commands import the services they use when they run, so `zhkh --help` and unrelated
# commands do not load the MQTT client, the database models and the rest.

devices = typer.Typer(help="Device models, devices (IoT modules, LoRaWAN end devices, waterius) and their bindings.")
meters = typer.Typer(help="Meters: replacement, physical flow limits.")
readings = typer.Typer(help="Readings: corrections, quarantine, dead letters.")
consumption = typer.Typer(help="Consumption per billing period.")
ingest = typer.Typer(help="Long-running intake of device messages.")


def _decimal(text: str, what: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation as exc:
        raise InvalidInput(f"{what}: not a number: {text!r}") from exc


def _values(text: str, what: str) -> list[Decimal]:
    return [_decimal(part, what) for part in text.split("/")]


def _period(text: str) -> Period:
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


# --- devices -----------------------------------------------------------------------------------


@devices.command("model")
def model_command(
    name: str = typer.Argument(..., help="the model's name, e.g. waterius or pulse-lorawan-v1"),
    fmt: str = typer.Option(..., "--format", help="platform, chirpstack, tts, wmbusmeters or waterius"),
    mapping: str = typer.Option(..., "--mapping", help="JSON, or @FILE with JSON (docs/iot.md)"),
) -> None:
    """Create or update a device model: which payload fields are readings and which are alarm flags."""
    from zhkh.core.db import session_scope
    from zhkh.metering.service import save_device_model

    text = Path(mapping[1:]).read_text(encoding="utf-8") if mapping.startswith("@") else mapping
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"--mapping is not JSON: {exc}") from exc
    with session_scope() as session:
        model = save_device_model(session, name, fmt, document)
    console.print(f"device model {model.name!r} ({model.format}) saved")


@devices.command("add")
def add_command(
    model: str = typer.Option(..., "--model", help="a device model's name"),
    external_id: str = typer.Option(..., "--id", help="DevEUI, wM-Bus id or waterius esp_id"),
    name: str | None = typer.Option(None, "--name"),
    secret: str | None = typer.Option(None, "--secret", help="the token it posts with over HTTP (waterius key)"),
) -> None:
    """Register a device (or update its model, name or secret)."""
    from zhkh.core.db import session_scope
    from zhkh.metering.service import register_device

    with session_scope() as session:
        device = register_device(session, model, external_id, name, secret)
    console.print(f"device {device.format}:{device.external_id} registered")


@devices.command("bind")
def bind_command(
    fmt: str = typer.Argument(..., help="the device's format"),
    external_id: str = typer.Argument(...),
    channel: str = typer.Argument(..., help="the model's channel, e.g. ch0 or volume_m3"),
    serial: str = typer.Argument(..., help="the meter it measures"),
    zone: int = typer.Option(1, "--zone"),
    since: datetime | None = typer.Option(None, "--since", help="from when (default now)"),
) -> None:
    """Bind a device channel to a meter; readings quarantined for it are replayed."""
    from zhkh.core.config import get_settings
    from zhkh.core.db import session_scope
    from zhkh.metering.service import bind_device

    with session_scope() as session:
        moment = since.replace(tzinfo=since.tzinfo or get_settings().zone) if since else None
        binding = bind_device(session, fmt, external_id, channel, serial, zone=zone, since=moment)
    console.print(f"{fmt}:{external_id} {channel} -> meter {serial} zone {binding.zone} from {binding.bound_from}")


@devices.command("unbind")
def unbind_command(
    fmt: str = typer.Argument(..., help="the device's format"),
    external_id: str = typer.Argument(...),
    channel: str = typer.Argument(...),
) -> None:
    """End a device channel's binding (the device was taken off or broke)."""
    from zhkh.core.db import session_scope
    from zhkh.metering.service import unbind_device

    with session_scope() as session:
        ended = unbind_device(session, fmt, external_id, channel)
    console.print(f"{fmt}:{external_id} {channel}: {ended} binding(s) ended")


@devices.command("list")
def list_devices() -> None:
    from sqlalchemy import select

    from zhkh.core.db import session_scope
    from zhkh.metering.models import Device, DeviceModel

    table = Table("format", "id", "model", "name")
    with session_scope() as session:
        for device, model in session.execute(select(Device, DeviceModel.name).join(DeviceModel).order_by(Device.id)):
            table.add_row(device.format, device.external_id, model, device.name or "")
    console.print(table)


# --- meters and readings -----------------------------------------------------------------------


@meters.command("replace")
def replace_command(
    old: str = typer.Argument(..., help="serial of the meter taken off"),
    new: str = typer.Argument(..., help="serial of the meter put on (registered already)"),
    on: datetime = typer.Option(..., "--on", formats=["%Y-%m-%d"], help="the date of the replacement"),
    final: str = typer.Option(..., "--final", help="the old meter's last reading; zones separated by /"),
    initial: str = typer.Option("0", "--initial", help="the new meter's first reading; zones separated by /"),
    time: datetime | None = typer.Option(
        None, "--time", formats=["%H:%M"], help="local time of the replacement (default: the start of the day)"
    ),
) -> None:
    """Replace a meter: both histories are kept, with the final and the initial readings."""
    from zhkh.core.config import get_settings
    from zhkh.core.db import session_scope
    from zhkh.metering.service import replace_meter

    day = date(on.year, on.month, on.day)
    at = None if time is None else datetime.combine(day, time.time(), tzinfo=get_settings().zone)
    with session_scope() as session:
        done = replace_meter(session, old, new, day, _values(final, "--final"), _values(initial, "--initial"), at=at)
    console.print(f"meter {done.old.serial} archived on {done.old.archived_on}, replaced by {done.new.serial}")


@meters.command("flow-limit")
def flow_limit_command(
    service: str = typer.Argument(..., help="cold_water, hot_water, electricity, heating or gas"),
    max_per_hour: str = typer.Argument(..., help="the most it can pass in an hour, in its unit"),
    diameter: int | None = typer.Option(None, "--diameter", help="pipe diameter, mm; none: the service's default"),
) -> None:
    """Set the physical limit used to reject impossible jumps (docs/metering.md)."""
    from zhkh.core.db import session_scope
    from zhkh.metering.models import Service
    from zhkh.metering.service import set_flow_limit

    try:
        chosen = Service(service)
    except ValueError as exc:
        raise InvalidInput(f"unknown service {service!r}; one of {', '.join(s.value for s in Service)}") from exc
    with session_scope() as session:
        limit = set_flow_limit(session, chosen, diameter, _decimal(max_per_hour, "max_per_hour"))
    console.print(f"{limit.service} DN{limit.diameter_mm or '*'}: at most {limit.max_per_hour} per hour")


@readings.command("correct")
def correct_command(
    reading_id: int = typer.Argument(...),
    value: str = typer.Option(..., "--value"),
    reason: str = typer.Option(..., "--reason", help="why; kept with the correction"),
) -> None:
    """Correct a reading; the original stays and is marked superseded."""
    from zhkh.core.db import session_scope
    from zhkh.metering.service import correct_reading

    with session_scope() as session:
        fixed = correct_reading(session, reading_id, _decimal(value, "--value"), reason)
    console.print(f"reading {reading_id} corrected by reading {fixed.id} ({fixed.value})")


@readings.command("quarantine")
def quarantine_command(reason: str | None = typer.Option(None, "--reason")) -> None:
    """Readings that belong to no live meter yet."""
    from sqlalchemy import select

    from zhkh.core.db import session_scope
    from zhkh.metering.models import QuarantinedReading

    table = Table("id", "reason", "serial / device", "channel", "zone", "taken at", "value", "source")
    with session_scope() as session:
        statement = select(QuarantinedReading).where(QuarantinedReading.resolved_at.is_(None))
        if reason:
            statement = statement.where(QuarantinedReading.reason == reason)
        for q in session.scalars(statement.order_by(QuarantinedReading.id).limit(1000)):
            origin = q.serial or f"{q.device_format}:{q.device_id}"
            table.add_row(
                str(q.id),
                q.reason,
                origin,
                q.channel or "",
                str(q.zone),
                q.taken_at.isoformat(),
                str(q.value),
                q.source,
            )
    console.print(table)


@readings.command("bind")
def bind_quarantine_command(
    quarantine_id: int = typer.Argument(...),
    serial: str = typer.Argument(..., help="the meter it belongs to"),
    zone: int | None = typer.Option(None, "--zone"),
) -> None:
    """Give a quarantined reading its meter and run it through validation."""
    from zhkh.core.db import session_scope
    from zhkh.metering.service import bind_quarantined

    with session_scope() as session:
        outcome = bind_quarantined(session, quarantine_id, serial, zone)
    console.print(
        f"quarantined reading {quarantine_id}: {outcome.status}" + (f" ({outcome.detail})" if outcome.detail else "")
    )


@readings.command("dead-letters")
def dead_letters_command(limit: int = typer.Option(50, "--limit")) -> None:
    """Messages that could not be read, newest first."""
    from sqlalchemy import select

    from zhkh.core.db import session_scope
    from zhkh.metering.models import DeadLetter

    table = Table("id", "received", "transport", "topic", "reason", "payload")
    with session_scope() as session:
        for letter in session.scalars(select(DeadLetter).order_by(DeadLetter.id.desc()).limit(limit)):
            table.add_row(
                str(letter.id),
                letter.received_at.isoformat(timespec="seconds"),
                letter.transport,
                letter.topic,
                letter.reason,
                letter.payload[:60].decode("utf-8", "replace"),
            )
    console.print(table)


@consumption.command("compute")
def compute_command(period: str = typer.Option(..., "--period", help="YYYY-MM")) -> None:
    """Compute every meter's consumption for a period (recomputing it if it was computed before)."""
    from zhkh.core.db import session_scope
    from zhkh.metering.consumption import compute_consumption

    with session_scope() as session:
        summary = compute_consumption(session, _period(period))
    parts = ", ".join(f"{count} {provenance}" for provenance, count in sorted(summary.by_provenance.items()))
    console.print(f"consumption {summary.period}: {summary.rows} meter zones ({parts or 'none'})")


# --- ingest ------------------------------------------------------------------------------------


@ingest.command("mqtt")
def mqtt_command(
    broker: str = typer.Option("mqtt://127.0.0.1:1883", "--broker", help="mqtt://[user:password@]host[:port]"),
    route: list[str] = typer.Option(
        [],
        "--route",
        help="TOPIC-PATTERN=FORMAT, repeatable; default: " + ", ".join(f"{p}={f}" for p, f in DEFAULT_ROUTES),
    ),
    group: str | None = typer.Option(None, "--group", help="share the load with other consumers ($share/GROUP/...)"),
    client_id: str | None = typer.Option(None, "--client-id"),
    batch_size: int = typer.Option(1000, "--batch-size"),
    idle_exit: float | None = typer.Option(None, "--idle-exit", help="stop after this many seconds without messages"),
    crash_after_commits: int | None = typer.Option(None, "--crash-after-commits", hidden=True),
) -> None:
    """Consume device messages from an MQTT broker (QoS 1, acknowledged after commit)."""
    from zhkh.core.db import get_engine
    from zhkh.core.runtime import settle_for_service
    from zhkh.metering.mqtt import Broker, MqttConsumer, parse_route

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    routes = [parse_route(r) for r in route] or list(DEFAULT_ROUTES)
    consumer = MqttConsumer(
        get_engine(),
        Broker.parse(broker),
        routes,
        group=group,
        client_id=client_id,
        batch_size=batch_size,
        crash_after_commits=crash_after_commits,  # fault injection for the crash test
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    settle_for_service()
    # The MQTT client's network thread reads and acknowledges while this one parses and stores;
    # with the default 5 ms between switches of the interpreter lock it fell so far behind a
    # backlog that the broker's PINGRESP waited 30 s in the socket and the connection timed out.
    sys.setswitchinterval(0.001)
    stats = consumer.run(stop, idle_exit)
    console.print(
        f"stopped: {stats.messages} messages, {stats.readings} readings, {stats.dead_letters} dead letters, "
        f"{stats.batches} batches"
    )
