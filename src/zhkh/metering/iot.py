"""Device message formats: turn what a meter, a LoRaWAN server or a decoder publishes into
device messages (which device, when, which fields). Pure: no I/O.

Formats (see docs/iot.md, with complete examples under examples/iot/):

- ``platform``: our own JSON, ``{"serial": "...", "ts": "...", "value": "123.456"}`` or with
  ``"values": {"t1": ..., "t2": ...}``; a list of those, or ``{"readings": [...]}``, for gateways.
  Readings name meters by serial directly, no device registry involved.
- ``chirpstack``: ChirpStack v4 uplink events, the decoded ``object``.
- ``tts``: The Things Stack v3 uplinks, ``uplink_message.decoded_payload``.
- ``wmbusmeters``: wmbusmeters telegram JSON.
- ``waterius``: the waterius counter's JSON (HTTP POST and MQTT), and its one-value-per-topic
  MQTT mode.

Which decoded field is a reading, and of which meter, is not decided here: the device's model
maps fields to channels and a binding maps a channel to a meter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from zhkh.metering.validation import well_formed_moment, well_formed_name, well_formed_value

FORMATS = ("platform", "chirpstack", "tts", "wmbusmeters", "waterius")
# Where each format is published by default (MQTT topic filters).
DEFAULT_ROUTES: tuple[tuple[str, str], ...] = (
    ("zhkh/readings/#", "platform"),
    ("application/+/device/+/event/up", "chirpstack"),
    ("v3/+/devices/+/up", "tts"),
    ("wmbusmeters/#", "wmbusmeters"),
    ("waterius/#", "waterius"),
)
# waterius starts its clock at 2024-01-01 when NTP fails; such a timestamp is not the reading's.
_WATERIUS_CLOCK_UNSET = datetime(2024, 1, 2, tzinfo=UTC)
_LITRE = Decimal("0.001")


class MessageError(ValueError):
    """The message cannot be read: it goes to the dead-letter table with this reason."""


@dataclass(slots=True)  # not frozen: one per reading of a gateway's message, and a frozen __init__ is slow
class SerialReading:
    """A reading that names its meter directly (the platform format)."""

    serial: str
    taken_at: datetime
    value: Decimal
    zone: int = 1


@dataclass(frozen=True, slots=True)
class DeviceMessage:
    """What one device said: flattened fields (``a.b`` for nested objects), when, and a message
    id for provenance."""

    format: str
    external_id: str
    taken_at: datetime
    fields: Mapping[str, Any]
    message_id: str | None = None


@dataclass
class Parsed:
    devices: list[DeviceMessage] = field(default_factory=list)
    serial_readings: list[SerialReading] = field(default_factory=list)
    ignored: str | None = None  # a well-formed message that carries no reading (and why)


def parse_message(fmt: str, topic: str, payload: bytes, received_at: datetime, *, retained: bool = False) -> Parsed:
    """Parse one message of ``fmt`` that arrived on ``topic``. Raises ``MessageError``, and only
    that: whatever a device sends, the worst outcome is a dead letter with a reason."""
    parser = _PARSERS.get(fmt)
    if parser is None:
        raise MessageError(f"unknown message format {fmt!r}; known: {', '.join(FORMATS)}")
    try:
        if fmt == "waterius" and _waterius_field_topic(topic, payload):
            return _waterius_field(topic, payload, received_at, retained)
        return parser(topic, _json(payload), received_at)
    except MessageError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, ArithmeticError) as exc:
        # A shape the parsers did not foresee (a number where text belongs, null for a list):
        # still the sender's fault, still a dead letter rather than a stuck consumer.
        raise MessageError(f"unexpected message shape: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload.decode("utf-8"), parse_float=Decimal, parse_int=Decimal)
    except UnicodeDecodeError as exc:
        raise MessageError("payload is not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        raise MessageError(f"payload is not JSON: {exc.msg} at position {exc.pos}") from exc
    except RecursionError as exc:
        raise MessageError("payload is nested too deeply to be a meter message") from exc


def _object(document: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(document, dict):
        raise MessageError(f"{what} must be a JSON object, got {type(document).__name__}")
    return document


_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(text: Any, what: str) -> datetime:
    """RFC 3339 with any fraction (ChirpStack and TTS send nanoseconds), ``Z``, ``+00:00`` or
    ``+0000`` (waterius). An offset is required: a time without one is ambiguous."""
    if not isinstance(text, str):
        raise MessageError(f"{what} must be a timestamp string, got {text!r}")
    match = _TIMESTAMP.match(text.strip())
    if not match:
        raise MessageError(f"{what}: not a timestamp: {text!r}")
    if match.group(3) is None:
        raise MessageError(f"{what}: a timestamp needs its UTC offset: {text!r}")
    try:
        # Since Python 3.11 fromisoformat reads every form the pattern lets through: Z, +0000,
        # a space for T, and a fraction of any length (beyond microseconds it is truncated).
        return well_formed_moment(datetime.fromisoformat(match.string), what)
    except ValueError as exc:
        raise MessageError(f"{what}: not a timestamp: {text!r} ({exc})") from exc


def decimal_value(value: Any, what: str) -> Decimal:
    """A reading value: a JSON number or a numeric string, never a bool."""
    if isinstance(value, bool) or value is None:
        raise MessageError(f"{what} must be a number, got {json.dumps(value)}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MessageError(f"{what} must be a number, got {value!r}") from exc
    try:
        return well_formed_value(number, what)
    except ValueError as exc:
        raise MessageError(str(exc)) from exc


def name(value: Any, what: str) -> str:
    """A serial number or device id from a message."""
    if not isinstance(value, str):
        raise MessageError(f"{what} must be a string, got {json.dumps(value, default=str)[:40]}")
    try:
        return well_formed_name(value, what)
    except ValueError as exc:
        raise MessageError(str(exc)) from exc


def _reference(value: Any) -> str | None:
    """A message id kept for provenance; whatever its JSON type, as text."""
    return None if value is None else str(value)[:200]


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are kept as values."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


# --- platform ----------------------------------------------------------------------------------


def _platform(_topic: str, document: Any, _received_at: datetime) -> Parsed:
    items = document.get("readings") if isinstance(document, dict) and "readings" in document else document
    items = items if isinstance(items, list) else [items]
    parsed = Parsed()
    for position, item in enumerate(items):
        where = f"reading {position}" if len(items) > 1 else "message"
        parsed.serial_readings += platform_reading(_object(item, where), where)
    return parsed


def platform_reading(item: Mapping[str, Any], where: str) -> list[SerialReading]:
    serial = name(item.get("serial"), f"{where}: serial")
    taken_at = parse_time(item.get("ts"), f"{where}: ts")
    if "value" in item and "values" in item:
        raise MessageError(f"{where}: give value or values, not both")
    if "value" in item:
        return [SerialReading(serial, taken_at, decimal_value(item["value"], f"{where}: value"))]
    values = item.get("values")
    if not isinstance(values, dict) or not values:
        raise MessageError(f"{where}: value or values is required")
    readings = []
    for key, value in values.items():
        if key not in ("t1", "t2", "t3"):
            raise MessageError(f"{where}: values has {key!r}; zones are t1, t2, t3")
        readings.append(SerialReading(serial, taken_at, decimal_value(value, f"{where}: values.{key}"), int(key[1])))
    return readings


# --- LoRaWAN servers ---------------------------------------------------------------------------


def _chirpstack(topic: str, document: Any, received_at: datetime) -> Parsed:
    event = _object(document, "ChirpStack event")
    if not topic.endswith("/event/up"):
        return Parsed(ignored=f"ChirpStack {topic.rsplit('/', 1)[-1]} event, not an uplink")
    info = _object(event.get("deviceInfo"), "deviceInfo")
    dev_eui = name(info.get("devEui"), "deviceInfo.devEui")
    decoded = event.get("object")
    if decoded is None:
        raise MessageError("uplink has no decoded object: the device profile has no codec, or decoding failed")
    taken_at = parse_time(event["time"], "time") if "time" in event else received_at
    message_id = _reference(event.get("deduplicationId"))
    return Parsed(
        devices=[
            DeviceMessage("chirpstack", dev_eui.lower(), taken_at, flatten(_object(decoded, "object")), message_id)
        ]
    )


def _tts(topic: str, document: Any, received_at: datetime) -> Parsed:
    envelope = _object(document, "The Things Stack message")
    if not topic.endswith("/up"):
        return Parsed(ignored="not an uplink")
    ids = _object(envelope.get("end_device_ids"), "end_device_ids")
    uplink = _object(envelope.get("uplink_message"), "uplink_message")
    dev_eui = name(ids.get("dev_eui") or ids.get("device_id"), "end_device_ids.dev_eui")
    decoded = uplink.get("decoded_payload")
    if decoded is None:
        raise MessageError("uplink has no decoded_payload: no payload formatter, or it failed")
    stamp = uplink.get("received_at") or envelope.get("received_at")
    taken_at = parse_time(stamp, "received_at") if stamp else received_at
    correlations = envelope.get("correlation_ids") or []
    if not isinstance(correlations, list):
        correlations = []
    correlation = next((c for c in correlations if str(c).startswith("as:up:")), None)
    return Parsed(
        devices=[
            DeviceMessage(
                "tts", dev_eui.lower(), taken_at, flatten(_object(decoded, "decoded_payload")), _reference(correlation)
            )
        ]
    )


# --- wM-Bus ------------------------------------------------------------------------------------

_WMBUS_FIXED = {"_", "media", "meter", "name", "id", "timestamp", "device", "rssi_dbm"}


def _wmbusmeters(_topic: str, document: Any, received_at: datetime) -> Parsed:
    telegram = _object(document, "wmbusmeters telegram")
    meter_id = name(telegram.get("id"), "telegram id")
    taken_at = parse_time(telegram["timestamp"], "timestamp") if "timestamp" in telegram else received_at
    fields = {key: value for key, value in telegram.items() if key not in _WMBUS_FIXED}
    return Parsed(devices=[DeviceMessage("wmbusmeters", meter_id, taken_at, fields, None)])


# --- waterius ----------------------------------------------------------------------------------


def _waterius(_topic: str, document: Any, received_at: datetime) -> Parsed:
    body = _object(document, "waterius message")
    if body.get("esp_id") is None:
        raise MessageError("waterius message has no esp_id")
    esp_id = name(str(body["esp_id"]), "esp_id")
    taken_at = received_at
    if "timestamp" in body:
        stamped = parse_time(body["timestamp"], "timestamp")
        # A clock that never synchronised starts at 2024-01-01: use the time we got the message.
        taken_at = stamped if stamped >= _WATERIUS_CLOCK_UNSET and not body.get("ntp_errors") else received_at
    fields: dict[str, Any] = dict(body)
    for channel in ("0", "1"):
        if body.get(f"ctype{channel}") == Decimal(255):
            fields.pop(f"ch{channel}", None)  # the input is switched off
        elif f"ch{channel}" in fields:
            # ch* are single-precision floats printed with noise (122.8399963): round to a litre.
            fields[f"ch{channel}"] = _litres(decimal_value(fields[f"ch{channel}"], f"ch{channel}"))
    message_id = f"{esp_id}:{body.get('imp0', '')}:{body.get('imp1', '')}"
    return Parsed(devices=[DeviceMessage("waterius", esp_id, taken_at, fields, message_id)])


def _waterius_field_topic(topic: str, payload: bytes) -> bool:
    """waterius publishes either its whole JSON object on ``<base>`` or one plain value per
    ``<base>/<field>``; the base topic is the user's choice (``waterius/<esp_id>`` by default),
    so the payload tells the modes apart, not the topic's first segment."""
    return topic.endswith("/set") or not payload.lstrip().startswith(b"{")


def _waterius_field(topic: str, payload: bytes, received_at: datetime, retained: bool) -> Parsed:
    """The one-value-per-topic mode: ``<base>/<field>`` where the base ends in the esp_id. Only
    ``ch0``/``ch1`` carry readings; ``<field>/set`` are commands to the device, and a retained
    value replayed on subscribe is an old reading, not a new one."""
    parts = topic.split("/")
    if topic.endswith("/set"):
        return Parsed(ignored="a command to the device, not a message from it")
    if len(parts) < 2:
        raise MessageError(f"a waterius field topic is <base>/<esp_id>/<field>, got {topic!r}")
    esp_id, field_name = name(parts[-2], "esp_id (topic)"), parts[-1]
    if field_name not in ("ch0", "ch1"):
        return Parsed(ignored=f"not a JSON object, and waterius field {field_name!r} carries no reading")
    if retained:
        return Parsed(ignored="a retained value replayed on subscribe")
    try:
        text = payload.decode().strip()
    except UnicodeDecodeError as exc:
        raise MessageError("payload is not UTF-8 text") from exc
    value = _litres(decimal_value(text, field_name))
    return Parsed(devices=[DeviceMessage("waterius", esp_id, received_at, {field_name: value}, None)])


def _litres(value: Decimal) -> Decimal:
    return value.quantize(_LITRE, rounding=ROUND_HALF_UP)


_PARSERS = {
    "platform": _platform,
    "chirpstack": _chirpstack,
    "tts": _tts,
    "wmbusmeters": _wmbusmeters,
    "waterius": _waterius,
}
