"""Every device message format, from the complete examples in examples/iot/."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from zhkh.metering.iot import MessageError, parse_message, parse_time
from zhkh.metering.mapping import MappingError, ModelMapping

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "iot"
RECEIVED = datetime(2025, 3, 14, 6, 13, tzinfo=UTC)


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def test_chirpstack_uplink() -> None:
    topic = "application/8c6a3b2e-5d4f-4e21-9a7b-0f1e2d3c4b5a/device/70b3d57ed0051234/event/up"
    [message] = parse_message("chirpstack", topic, example("chirpstack-up.json"), RECEIVED).devices
    assert message.external_id == "70b3d57ed0051234"
    assert message.taken_at == datetime(2025, 3, 14, 6, 12, 45, 291542, tzinfo=UTC)  # nanoseconds cut to micro
    assert message.fields["volume_m3"] == Decimal("123.456")
    assert message.message_id == "3ac7e3c4-4401-4b8d-9386-a5c902f9202d"


def test_chirpstack_without_codec_output_is_refused() -> None:
    document = json.loads(example("chirpstack-up.json"))
    del document["object"]
    with pytest.raises(MessageError, match="no decoded object"):
        parse_message("chirpstack", "application/a/device/b/event/up", json.dumps(document).encode(), RECEIVED)


def test_chirpstack_other_events_are_ignored() -> None:
    parsed = parse_message("chirpstack", "application/a/device/b/event/join", b'{"deviceInfo": {}}', RECEIVED)
    assert parsed.ignored is not None
    assert not parsed.devices


def test_the_things_stack_uplink_uppercase_eui_is_normalised() -> None:
    [message] = parse_message(
        "tts", "v3/water-meters@ttn/devices/kv12-cold/up", example("tts-up.json"), RECEIVED
    ).devices
    assert message.external_id == "70b3d57ed0051234"
    assert message.taken_at == datetime(2025, 3, 14, 6, 12, 45, 306524, tzinfo=UTC)
    assert message.fields == {"battery_v": Decimal("3.6"), "leak": False, "volume_m3": Decimal("123.456")}
    assert message.message_id == "as:up:01JPB6X4Q2ZQ3M7Y8R5T9V1W2X"


def test_the_things_stack_first_uplink_without_f_cnt() -> None:
    document = json.loads(example("tts-up.json"))
    del document["uplink_message"]["f_cnt"]  # zero values are omitted: the first uplink has none
    parsed = parse_message("tts", "v3/a@ttn/devices/b/up", json.dumps(document).encode(), RECEIVED)
    assert parsed.devices[0].fields["volume_m3"] == Decimal("123.456")


@pytest.mark.parametrize(
    ("name", "meter_id", "total"),
    [("wmbusmeters-iperl.json", "33225544", "123.529"), ("wmbusmeters-kamwater.json", "76348799", "6.408")],
)
def test_wmbusmeters(name: str, meter_id: str, total: str) -> None:
    [message] = parse_message("wmbusmeters", f"wmbusmeters/{meter_id}", example(name), RECEIVED).devices
    assert message.external_id == meter_id
    assert message.fields["total_m3"] == Decimal(total)
    assert "id" not in message.fields
    assert "rssi_dbm" not in message.fields


def test_waterius_json() -> None:
    [message] = parse_message("waterius", "waterius/10099775", example("waterius-http.json"), RECEIVED).devices
    assert message.external_id == "10099775"
    assert message.taken_at == datetime(2025, 3, 14, 6, 12, 45, tzinfo=UTC)
    assert (message.fields["ch0"], message.fields["ch1"]) == (Decimal("122.840"), Decimal("255.920"))


def test_waterius_float_noise_is_rounded_to_a_litre() -> None:
    body = json.loads(example("waterius-http.json"))
    body["ch0"] = 122.8399963
    [message] = parse_message("waterius", "waterius/1", json.dumps(body).encode(), RECEIVED).devices
    assert message.fields["ch0"] == Decimal("122.840")


def test_waterius_unsynchronised_clock_falls_back_to_arrival() -> None:
    body = json.loads(example("waterius-http.json"))
    body["timestamp"] = "2024-01-01T00:03:00+0000"
    [message] = parse_message("waterius", "waterius/1", json.dumps(body).encode(), RECEIVED).devices
    assert message.taken_at == RECEIVED


def test_waterius_switched_off_channel_is_dropped() -> None:
    body = json.loads(example("waterius-http.json"))
    body["ctype1"] = 255
    [message] = parse_message("waterius", "waterius/1", json.dumps(body).encode(), RECEIVED).devices
    assert "ch1" not in message.fields


def test_waterius_one_value_per_topic() -> None:
    lines = [
        line.split(" ", 1)
        for line in (EXAMPLES / "waterius-mqtt-fields.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    readings = []
    for topic, value in lines:
        parsed = parse_message("waterius", topic, value.encode(), RECEIVED)
        readings += [(m.external_id, dict(m.fields)) for m in parsed.devices]
    assert readings == [("10099775", {"ch0": Decimal("122.840")}), ("10099775", {"ch1": Decimal("255.920")})]
    replay = parse_message("waterius", "waterius/10099775/ch0", b"122.84", RECEIVED, retained=True)
    assert replay.devices == []
    assert replay.ignored == "a retained value replayed on subscribe"


def test_platform_formats() -> None:
    single = parse_message("platform", "zhkh/readings/x", example("platform.json"), RECEIVED).serial_readings
    assert [(r.serial, r.value, r.zone) for r in single] == [("CW-100101", Decimal("123.456"), 1)]
    assert single[0].taken_at == datetime(2025, 3, 14, 6, tzinfo=UTC)
    zones = parse_message("platform", "zhkh/readings/x", example("platform-two-zone.json"), RECEIVED).serial_readings
    assert [(r.zone, r.value) for r in zones] == [(1, Decimal("4521.7")), (2, Decimal("1873.25"))]
    batch = parse_message(
        "platform", "zhkh/readings/gw", example("platform-gateway-batch.json"), RECEIVED
    ).serial_readings
    assert len(batch) == 4


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"serial": "X", "ts": "2025-03-14T09:00:00+03:00", "value": true}', "must be a number"),
        (b'{"serial": "X", "ts": "2025-03-14T09:00:00+03:00", "value": "abc"}', "must be a number"),
        (b'{"serial": "X", "ts": "yesterday", "value": "1"}', "not a timestamp"),
        (b'{"serial": "X", "ts": "2025-03-14T09:00:00", "value": "1"}', "UTC offset"),
        (b'{"serial": "", "ts": "2025-03-14T09:00:00Z", "value": "1"}', "serial"),
        (b'{"serial": "X", "ts": "2025-03-14T09:00:00Z"}', "value or values"),
        (b'{"serial": "X", "ts": "2025-03-14T09:00:00Z", "values": {"t4": 1}}', "zones are t1"),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
def test_malformed_platform_messages(payload: bytes, message: str) -> None:
    with pytest.raises(MessageError, match=message):
        parse_message("platform", "zhkh/readings/x", payload, RECEIVED)


def test_unknown_format() -> None:
    with pytest.raises(MessageError, match="unknown message format"):
        parse_message("modbus", "x", b"{}", RECEIVED)


def test_parse_time_accepts_every_offset_style() -> None:
    assert parse_time("2025-03-14T06:12:45+0000", "t") == datetime(2025, 3, 14, 6, 12, 45, tzinfo=UTC)
    assert parse_time("2025-03-14T06:12:45.123456789Z", "t").microsecond == 123456


def test_model_mapping_reads_channels_and_flags() -> None:
    models = json.loads((EXAMPLES / "models.json").read_text())
    mapping = ModelMapping.from_json(models["pulse-lorawan"]["mapping"])
    fields = {"volume_m3": Decimal("123.456"), "battery_v": Decimal("3.0"), "leak": False}
    assert mapping.readings(fields) == {"volume_m3": Decimal("123.456")}
    assert mapping.raised_flags(fields) == {"leak": False, "low_battery": True}
    litres = ModelMapping.from_json({"channels": {"volume_l": {"scale": "0.001"}}})
    assert litres.readings({"volume_l": 123456}) == {"volume_l": Decimal("123.456")}
    with pytest.raises(ValueError, match="must be a number"):
        mapping.readings({"volume_m3": "lots"})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "at least one channel"),
        ({"channels": {"v": {"scale": "-1"}}}, "positive"),
        ({"channels": {"v": {}}, "flags": {"fire": {"field": "x"}}}, "known kinds"),
        ({"channels": {"v": {}}, "extra": 1}, "unknown keys"),
        ({"channels": {"v": {}}, "flags": {"leak": {"field": "x", "not_in": [], "below": 1}}}, "not both"),
    ],
)
def test_bad_mappings_are_refused(document: dict[str, object], message: str) -> None:
    with pytest.raises(MappingError, match=message):
        ModelMapping.from_json(document)


def _chirpstack_with(**changes: object) -> bytes:
    document = json.loads(example("chirpstack-up.json"))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = document
        for key in parents:
            node = node[key]
        node[leaf] = value
    return json.dumps(document).encode()


def _tts_with(**changes: object) -> bytes:
    document = json.loads(example("tts-up.json"))
    document.update(changes)
    return json.dumps(document).encode()


PLATFORM = "zhkh/readings/x"
CHIRPSTACK = "application/a/device/70b3d57ed0051234/event/up"


@pytest.mark.parametrize(
    ("fmt", "topic", "payload", "reason"),
    [
        ("platform", PLATFORM, b'{"serial":"X","ts":"9999-12-31T23:59:59-12:00","value":"1"}', "ts: not a timestamp"),
        ("platform", PLATFORM, b'{"serial":"X","ts":"0001-01-01T00:00:00+14:00","value":"1"}', "ts: not a timestamp"),
        ("platform", PLATFORM, b'{"serial":"X","ts":"1969-12-31T23:00:00Z","value":"1"}', "between 1970 and 2099"),
        ("platform", PLATFORM, b'{"serial":"X","ts":"2025-03-14T09:00:00Z","value":"1e400000"}', "more than 12 digits"),
        ("platform", PLATFORM, b'{"serial":"X","ts":"2025-03-14T09:00:00Z","value":"NaN"}', "finite number"),
        ("platform", PLATFORM, b'{"serial":"X","ts":"2025-03-14T09:00:00Z","value":"Infinity"}', "finite number"),
        (
            "platform",
            PLATFORM,
            b'{"serial":"' + b"S" * 65 + b'","ts":"2025-03-14T09:00:00Z","value":"1"}',
            "longer than 64",
        ),
        ("platform", PLATFORM, b'{"serial":"A\\u0000B","ts":"2025-03-14T09:00:00Z","value":"1"}', "control characters"),
        ("platform", PLATFORM, b"[" * 100_000, "nested too deeply"),
        ("chirpstack", CHIRPSTACK, _chirpstack_with(deviceInfo__devEui="70b3\u0000"), "control characters"),
        ("chirpstack", CHIRPSTACK, _chirpstack_with(deviceInfo__devEui=5), "devEui must be a string"),
        ("waterius", "waterius/10099775", b'{"esp_id": 10099775, "ch0": "1e999999999"}', "more than 12 digits"),
        ("waterius", "waterius/10099775/ch0", b"1e999999999", "more than 12 digits"),
        ("waterius", "waterius/10099775/ch0", b"-Infinity", "finite number"),
    ],
)
def test_hostile_messages_are_refused_with_a_reason(fmt: str, topic: str, payload: bytes, reason: str) -> None:
    """Each of these once stalled the consumer (an exception other than MessageError) or
    crashed PostgreSQL (numbers and names beyond its limits); now each is a dead letter."""
    with pytest.raises(MessageError, match=re.escape(reason)):
        parse_message(fmt, topic, payload, RECEIVED)


@pytest.mark.parametrize(
    ("payload", "dedup"),
    [(_chirpstack_with(deduplicationId=5), "5"), (_chirpstack_with(deduplicationId=None), None)],
)
def test_chirpstack_message_id_of_any_json_type(payload: bytes, dedup: str | None) -> None:
    [device] = parse_message("chirpstack", CHIRPSTACK, payload, RECEIVED).devices
    assert device.message_id == dedup


def test_the_things_stack_null_correlation_ids() -> None:
    [device] = parse_message("tts", "v3/a/devices/b/up", _tts_with(correlation_ids=None), RECEIVED).devices
    assert device.message_id is None


def test_decoder_float_noise_is_rounded_to_nine_places() -> None:
    payload = b'{"serial":"X","ts":"2025-03-14T09:00:00Z","value":123.45600000000002}'
    [reading] = parse_message("platform", PLATFORM, payload, RECEIVED).serial_readings
    assert reading.value == Decimal("123.456")


@pytest.mark.parametrize("base", ["waterius/10099775", "house7/waterius/10099775", "kv12/10099775"])
def test_waterius_one_value_per_topic_under_any_base_topic(base: str) -> None:
    [device] = parse_message("waterius", f"{base}/ch1", b"255.92", RECEIVED).devices
    assert (device.external_id, dict(device.fields)) == ("10099775", {"ch1": Decimal("255.920")})
    assert parse_message("waterius", f"{base}/ch0/set", b"100", RECEIVED).ignored
    assert parse_message("waterius", f"{base}/voltage_low", b"false", RECEIVED).ignored
    whole = parse_message("waterius", base, example("waterius-http.json"), RECEIVED)
    assert whole.devices[0].external_id == "10099775"
