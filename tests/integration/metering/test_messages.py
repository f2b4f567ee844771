"""Device messages of every format through the pipeline; dead letters; device-reported alarms."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import IOT_EXAMPLES, device_models, metered_registry, platform_example
from zhkh.alarms.models import Alarm, AlarmKind, AlarmState
from zhkh.metering import messages
from zhkh.metering.errors import QuarantineNotFound
from zhkh.metering.intake import IncomingReading, Status, ingest
from zhkh.metering.messages import MessageStatus, RawMessage, process_messages, process_or_keep
from zhkh.metering.models import DeadLetter, Meter, QuarantinedReading, Reading
from zhkh.metering.service import bind_device, bind_quarantined, register_device

RECEIVED = datetime(2025, 3, 14, 7, tzinfo=UTC)
BOUND = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def devices(session: Session, tmp_path: Path) -> None:
    metered_registry(session, tmp_path)
    device_models(session)
    register_device(session, "pulse-lorawan", "70b3d57ed0051234")
    register_device(session, "pulse-lorawan-tts", "70B3D57ED0051234")
    register_device(session, "iperl", "33225544")
    register_device(session, "waterius", "10099775", secret="3F9A1C0B7E2D4A6F8B1C3E5D7F9A0B2C4")
    bind_device(session, "chirpstack", "70b3d57ed0051234", "volume_m3", "CW-1001", since=BOUND)
    bind_device(session, "wmbusmeters", "33225544", "total_m3", "B-CW", since=datetime(2024, 2, 1, tzinfo=UTC))
    bind_device(session, "waterius", "10099775", "ch0", "HW-1001", since=datetime(2025, 3, 1, tzinfo=UTC))


def message(fmt: str, topic: str, name: str) -> RawMessage:
    return RawMessage("mqtt", fmt, topic, (IOT_EXAMPLES / name).read_bytes(), RECEIVED)


@pytest.mark.usefixtures("devices")
def test_every_format_becomes_readings(session: Session) -> None:
    results = process_messages(
        session,
        [
            message("chirpstack", "application/a/device/70b3d57ed0051234/event/up", "chirpstack-up.json"),
            message("wmbusmeters", "wmbusmeters/33225544", "wmbusmeters-iperl.json"),
            RawMessage(
                "mqtt", "platform", "zhkh/readings/gw1", platform_example("platform-gateway-batch.json"), RECEIVED
            ),
        ],
    )
    assert [r.status for r in results] == [MessageStatus.PROCESSED] * 3
    assert [o.status for o in results[0].readings] == [Status.ACCEPTED]
    assert [o.status for o in results[2].readings] == [
        Status.ACCEPTED,
        Status.ACCEPTED,
        Status.ACCEPTED,
        Status.ACCEPTED,
    ]
    stored = session.execute(select(Reading.source, Reading.value).order_by(Reading.id)).all()
    assert ("mqtt:chirpstack", Decimal("123.456")) in stored
    assert ("mqtt:wmbusmeters", Decimal("123.529")) in stored


@pytest.mark.usefixtures("devices")
def test_waterius_channel_without_binding_is_quarantined(session: Session) -> None:
    [result] = process_messages(session, [message("waterius", "waterius/10099775", "waterius-http.json")])
    # ch0 is bound (from 1 March), ch1 is not bound to any meter
    assert sorted(o.status for o in result.readings) == [Status.ACCEPTED, Status.QUARANTINED]


@pytest.mark.usefixtures("devices")
def test_redelivery_changes_nothing(session: Session) -> None:
    raw = message("chirpstack", "application/a/device/70b3d57ed0051234/event/up", "chirpstack-up.json")
    process_messages(session, [raw])
    [again] = process_messages(session, [raw])
    assert [o.status for o in again.readings] == [Status.DUPLICATE]
    assert len(session.scalars(select(Reading)).all()) == 1


@pytest.mark.usefixtures("devices")
@pytest.mark.parametrize(
    ("fmt", "topic", "payload", "reason"),
    [
        ("platform", "zhkh/readings/x", b"{not json", "not JSON"),
        ("chirpstack", "application/a/device/ffff/event/up", None, "unknown chirpstack device"),
        (
            "wmbusmeters",
            "wmbusmeters/33225544",
            b'{"_":"telegram","id":"33225544","total_m3":"lots"}',
            "must be a number",
        ),
        ("tts", "v3/a/devices/b/up", b'{"end_device_ids": 5}', "must be a JSON object"),
    ],
)
def test_unreadable_messages_go_to_dead_letters(
    session: Session, fmt: str, topic: str, payload: bytes | None, reason: str
) -> None:
    if payload is None:
        document = json.loads((IOT_EXAMPLES / "chirpstack-up.json").read_text())
        document["deviceInfo"]["devEui"] = "ffff"
        payload = json.dumps(document).encode()
    [result] = process_messages(session, [RawMessage("mqtt", fmt, topic, payload, RECEIVED)])
    assert result.status is MessageStatus.DEAD_LETTER
    assert reason in (result.reason or "")
    letter = session.scalar(select(DeadLetter))
    assert letter is not None
    assert (letter.topic, letter.payload) == (topic, payload)
    assert reason in letter.reason


@pytest.mark.usefixtures("devices")
def test_a_bad_message_does_not_spoil_its_batch(session: Session) -> None:
    good = message("chirpstack", "application/a/device/70b3d57ed0051234/event/up", "chirpstack-up.json")
    bad = RawMessage("mqtt", "platform", "zhkh/readings/x", b"garbage", RECEIVED)
    results = process_messages(session, [bad, good])
    assert [r.status for r in results] == [MessageStatus.DEAD_LETTER, MessageStatus.PROCESSED]


@pytest.mark.usefixtures("devices")
def test_device_flags_raise_once_and_clear(session: Session) -> None:
    topic = "application/a/device/70b3d57ed0051234/event/up"
    document = json.loads((IOT_EXAMPLES / "chirpstack-up.json").read_text())
    document["object"]["leak"] = True
    for minute in (0, 10):
        document["time"] = f"2025-03-14T06:{minute:02d}:00Z"
        document["object"]["volume_m3"] = 123.456 + minute / 1000
        process_messages(session, [RawMessage("mqtt", "chirpstack", topic, json.dumps(document).encode(), RECEIVED)])
    [alarm] = session.scalars(select(Alarm).where(Alarm.kind == AlarmKind.LEAK)).all()
    # A leak is the meter's alarm, the same one the flow rule raises: one leak, one notification.
    assert (alarm.state, alarm.occurrences, alarm.subject) == (AlarmState.ACTIVE, 2, "meter:CW-1001")
    assert alarm.details["device"] == "70b3d57ed0051234"
    document["object"]["leak"] = False
    document["time"] = "2025-03-14T06:20:00Z"
    process_messages(session, [RawMessage("mqtt", "chirpstack", topic, json.dumps(document).encode(), RECEIVED)])
    assert alarm.state is AlarmState.CLEARED


@pytest.mark.usefixtures("devices")
def test_low_battery_and_leak_flags_from_the_model_mapping(session: Session) -> None:
    """pulse-lorawan maps battery_v below 3.1 to low_battery; kamwater maps a non-empty
    time_leaking to leak (examples/iot/models.json)."""
    register_device(session, "kamwater", "76348799")
    bind_device(session, "wmbusmeters", "76348799", "total_m3", "HW-1001", since=BOUND)
    document = json.loads((IOT_EXAMPLES / "chirpstack-up.json").read_text())
    document["object"]["battery_v"] = 2.9
    telegram = json.loads((IOT_EXAMPLES / "wmbusmeters-kamwater.json").read_text())
    telegram["time_leaking"] = "1-8 hours"
    process_messages(
        session,
        [
            RawMessage(
                "mqtt",
                "chirpstack",
                "application/a/device/70b3d57ed0051234/event/up",
                json.dumps(document).encode(),
                RECEIVED,
            ),
            RawMessage("mqtt", "wmbusmeters", "wmbusmeters/76348799", json.dumps(telegram).encode(), RECEIVED),
        ],
    )
    raised = {(a.kind.value, a.subject) for a in session.scalars(select(Alarm))}
    assert raised == {("low_battery", "device:chirpstack:70b3d57ed0051234"), ("leak", "meter:HW-1001")}


@pytest.mark.usefixtures("devices")
def test_tamper_and_magnet_flags_raise_device_alarms_and_clear(session: Session) -> None:
    """pulse-lorawan maps its decoder's ``tamper`` and ``magnet`` fields to those alarms
    (examples/iot/models.json): each is raised once however often it repeats, and a message
    reporting the flag off clears it; the reading itself is stored either way."""
    topic = "application/a/device/70b3d57ed0051234/event/up"
    document = json.loads((IOT_EXAMPLES / "chirpstack-up.json").read_text())
    document["object"] |= {"tamper": True, "magnet": "true"}
    for minute in (0, 10):
        document["time"] = f"2025-03-14T06:{minute:02d}:00Z"
        document["object"]["volume_m3"] = 123.456 + minute / 1000
        process_messages(session, [RawMessage("mqtt", "chirpstack", topic, json.dumps(document).encode(), RECEIVED)])
    alarms = {a.kind: a for a in session.scalars(select(Alarm))}
    assert set(alarms) == {AlarmKind.TAMPER, AlarmKind.MAGNET}
    for alarm in alarms.values():
        assert (alarm.state, alarm.occurrences, alarm.subject) == (
            AlarmState.ACTIVE,
            2,
            "device:chirpstack:70b3d57ed0051234",
        )
    document["object"] |= {"tamper": False, "magnet": "false", "volume_m3": 123.480}
    document["time"] = "2025-03-14T06:20:00Z"
    process_messages(session, [RawMessage("mqtt", "chirpstack", topic, json.dumps(document).encode(), RECEIVED)])
    assert {alarm.state for alarm in alarms.values()} == {AlarmState.CLEARED}
    stored = session.scalars(select(Reading.value).join(Meter).where(Meter.serial == "CW-1001")).all()
    assert sorted(stored) == [Decimal("123.456"), Decimal("123.466"), Decimal("123.480")]


@pytest.mark.usefixtures("devices")
def test_the_things_stack_and_waterius_topics(session: Session) -> None:
    register_device(session, "pulse-lorawan-tts", "70b3d57ed0059999")
    bind_device(session, "tts", "70b3d57ed0059999", "volume_m3", "B-CW", since=BOUND)
    uplink = json.loads((IOT_EXAMPLES / "tts-up.json").read_text())
    uplink["end_device_ids"]["dev_eui"] = "70B3D57ED0059999"
    results = process_messages(
        session,
        [
            RawMessage("mqtt", "tts", "v3/water-meters@ttn/devices/x/up", json.dumps(uplink).encode(), RECEIVED),
            RawMessage("mqtt", "waterius", "waterius/10099775/ch0", b"130.5", RECEIVED),
            RawMessage("mqtt", "waterius", "waterius/10099775/voltage_low", b"false", RECEIVED),
            RawMessage("mqtt", "waterius", "waterius/10099775/ch0/set", b"1", RECEIVED),
        ],
    )
    assert [r.status for r in results] == [
        MessageStatus.PROCESSED,
        MessageStatus.PROCESSED,
        MessageStatus.IGNORED,
        MessageStatus.IGNORED,
    ]
    assert [o.status for o in results[0].readings + results[1].readings] == [Status.ACCEPTED, Status.ACCEPTED]


def _chirpstack(volume: object) -> RawMessage:
    document = json.loads((IOT_EXAMPLES / "chirpstack-up.json").read_text())
    document["object"]["volume_m3"] = volume
    return RawMessage("mqtt", "chirpstack", CHIRPSTACK_TOPIC, json.dumps(document).encode(), RECEIVED)


CHIRPSTACK_TOPIC = "application/a/device/70b3d57ed0051234/event/up"


@pytest.mark.usefixtures("devices")
@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (_chirpstack("NaN"), "finite number"),
        (_chirpstack("1e400000"), "more than 12 digits"),
        (
            RawMessage(
                "mqtt",
                "platform",
                "zhkh/readings/x",
                b'{"serial":"' + b"S" * 80 + b'","ts":"2025-03-14T09:00:00Z","value":1}',
                RECEIVED,
            ),
            "longer than 64",
        ),
        (
            RawMessage(
                "mqtt",
                "platform",
                "zhkh/readings/x",
                b'{"serial":"CW\\u00001","ts":"2025-03-14T09:00:00Z","value":1}',
                RECEIVED,
            ),
            "control characters",
        ),
    ],
)
def test_values_and_names_beyond_what_a_reading_can_be_are_dead_letters(
    session: Session, raw: RawMessage, reason: str
) -> None:
    """On PostgreSQL these once reached the database and failed the whole batch."""
    good = message("chirpstack", CHIRPSTACK_TOPIC, "chirpstack-up.json")
    results = process_messages(session, [raw, good])
    assert [r.status for r in results] == [MessageStatus.DEAD_LETTER, MessageStatus.PROCESSED]
    assert reason in (results[0].reason or "")
    assert session.scalar(select(func.count()).select_from(Reading)) == 1


@pytest.mark.usefixtures("devices")
def test_a_message_the_pipeline_fails_on_is_kept_and_its_writes_undone(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """process_or_keep (the HTTP integrations) rolls back to its savepoint and keeps the raw
    message, whatever went wrong inside the pipeline."""

    def broken_alarms(*_args: object) -> None:
        raise RuntimeError("alarm service down")

    monkeypatch.setattr(messages, "_device_alarms", broken_alarms)
    raw = message("chirpstack", CHIRPSTACK_TOPIC, "chirpstack-up.json")
    result = process_or_keep(session, raw)
    assert result.status is MessageStatus.DEAD_LETTER
    assert result.reason == "could not be processed (RuntimeError): alarm service down"
    assert session.scalar(select(func.count()).select_from(Reading)) == 0  # the reading was undone
    letter = session.scalar(select(DeadLetter))
    assert letter is not None
    assert letter.payload == raw.payload


@pytest.mark.usefixtures("devices")
def test_a_redelivered_message_is_quarantined_and_dead_lettered_once(session: Session) -> None:
    """The broker delivers again what was not acknowledged: ch1 of the waterius (bound to no
    meter) stays one quarantined reading, and an unreadable message one dead letter, seen twice."""
    waterius = message("waterius", "waterius/10099775", "waterius-http.json")
    garbage = RawMessage("mqtt", "platform", "zhkh/readings/x", b"garbage", RECEIVED)
    for _ in range(2):
        process_messages(session, [waterius, garbage])
    assert len(session.scalars(select(QuarantinedReading)).all()) == 1
    [letter] = session.scalars(select(DeadLetter)).all()
    assert letter.occurrences == 2


@pytest.mark.usefixtures("devices")
def test_binding_replays_only_its_channel_and_settles_every_replayed_reading(session: Session) -> None:
    """A waterius message of 1 February, before any channel was bound: both channels wait in
    quarantine. Binding ch1 replays ch1 only. ch0's reading meanwhile reached HW-1001 another
    way (a file), so binding it by hand finds it stored: settled all the same, not left waiting
    for ever."""
    body = json.loads((IOT_EXAMPLES / "waterius-http.json").read_text())
    body["timestamp"] = "2025-02-01T06:00:00+0000"
    february = datetime(2025, 2, 1, 6, tzinfo=UTC)
    process_messages(
        session, [RawMessage("mqtt", "waterius", "waterius/10099775", json.dumps(body).encode(), february)]
    )
    waiting = session.scalars(select(QuarantinedReading).order_by(QuarantinedReading.channel)).all()
    assert [(q.channel, q.resolved_at is None) for q in waiting] == [("ch0", True), ("ch1", True)]
    bind_device(session, "waterius", "10099775", "ch1", "CW-1001", since=datetime(2025, 1, 1, tzinfo=UTC))
    assert [(q.channel, q.resolved_at is None) for q in waiting] == [("ch0", True), ("ch1", False)]
    assert waiting[1].resolved_reading_id is not None
    ingest(session, [IncomingReading(waiting[0].taken_at, waiting[0].value, 1, "HW-1001", source="file")])
    assert bind_quarantined(session, waiting[0].id, "HW-1001").status is Status.DUPLICATE
    assert waiting[0].resolved_at is not None
    with pytest.raises(QuarantineNotFound):
        bind_quarantined(session, waiting[0].id, "HW-1001")
