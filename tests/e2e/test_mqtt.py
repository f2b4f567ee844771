"""The MQTT consumer against the real broker on 127.0.0.1:1883, as real processes: every format,
dead letters, a crash in the middle, and two consumers sharing a subscription."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.builders import IOT_EXAMPLES, device_models, metered_registry, platform_example
from tests.conftest import IN_CI
from zhkh.core.db import get_engine, session_scope
from zhkh.metering import mqtt as mqtt_consumer
from zhkh.metering.messages import MessageResult, RawMessage, process_messages
from zhkh.metering.models import DeadLetter, Reading
from zhkh.metering.mqtt import Broker, MqttConsumer
from zhkh.metering.service import bind_device, register_device

pytestmark = pytest.mark.e2e
HOST, PORT = "127.0.0.1", 1883


@pytest.fixture(scope="module")
def broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        if IN_CI:
            pytest.fail(f"no MQTT broker on {HOST}:{PORT} ({exc}); CI=true requires it", pytrace=False)
        pytest.skip(f"no MQTT broker on {HOST}:{PORT}")


@pytest.fixture
def town(scratch_database: str, tmp_path: Path, broker: None) -> str:
    with session_scope() as session:
        metered_registry(session, tmp_path)
        device_models(session)
        register_device(session, "pulse-lorawan", "70b3d57ed0051234")
        register_device(session, "pulse-lorawan-tts", "70b3d57ed0059999")
        register_device(session, "iperl", "33225544")
        register_device(session, "waterius", "10099775")
        since = datetime(2024, 1, 1, tzinfo=UTC)
        bind_device(session, "chirpstack", "70b3d57ed0051234", "volume_m3", "CW-1001", since=since)
        bind_device(session, "tts", "70b3d57ed0059999", "volume_m3", "EL-1002", since=since)
        bind_device(session, "wmbusmeters", "33225544", "total_m3", "B-CW", since=since)
        bind_device(session, "waterius", "10099775", "ch0", "HW-1001", since=since)
    return scratch_database


def publisher() -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:6]}")
    client.connect(HOST, PORT)
    client.loop_start()
    return client


def publish_all(messages: list[tuple[str, bytes]]) -> None:
    client = publisher()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(timeout=30)
    client.loop_stop()
    client.disconnect()


def count(model: type) -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def wait_for(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.2)


def routes(prefix: str) -> list[tuple[str, str]]:
    return [
        (f"{prefix}/zhkh/#", "platform"),
        (f"{prefix}/application/+/device/+/event/up", "chirpstack"),
        (f"{prefix}/v3/+/devices/+/up", "tts"),
        (f"{prefix}/wmbusmeters/#", "wmbusmeters"),
        (f"{prefix}/waterius/#", "waterius"),
    ]


def platform_messages(
    prefix: str, n: int, serials: tuple[str, ...] = ("CW-1001", "HW-1001", "B-CW")
) -> list[tuple[str, bytes]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    messages = []
    for i in range(n):
        serial = serials[i % len(serials)]
        body = {"serial": serial, "ts": (start + timedelta(minutes=i)).isoformat(), "value": f"{100 + i / 1000:.3f}"}
        messages.append((f"{prefix}/zhkh/{serial}", json.dumps(body).encode()))
    return messages


@pytest.fixture
def consumer_thread(town: str) -> Iterator[Callable[[list[tuple[str, str]]], MqttConsumer]]:
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def start(routing: list[tuple[str, str]]) -> MqttConsumer:
        consumer = MqttConsumer(
            get_engine(), Broker(HOST, PORT), routing, batch_wait=0.02, client_id=f"test-{uuid.uuid4().hex[:8]}"
        )
        thread = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
        thread.start()
        threads.append(thread)
        assert consumer.connected.wait(10)
        time.sleep(0.3)  # the subscription is acknowledged right after the connection
        return consumer

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)


def test_every_format_over_mqtt(consumer_thread: Callable[[list[tuple[str, str]]], MqttConsumer]) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    consumer = consumer_thread(routes(prefix))
    example = (IOT_EXAMPLES / "waterius-http.json").read_bytes()
    uplink = json.loads((IOT_EXAMPLES / "tts-up.json").read_text())
    uplink["end_device_ids"]["dev_eui"] = "70B3D57ED0059999"
    publish_all(
        [
            (f"{prefix}/zhkh/gw", platform_example("platform.json")),
            (
                f"{prefix}/application/x/device/70b3d57ed0051234/event/up",
                (IOT_EXAMPLES / "chirpstack-up.json").read_bytes(),
            ),
            (f"{prefix}/wmbusmeters/33225544", (IOT_EXAMPLES / "wmbusmeters-iperl.json").read_bytes()),
            (f"{prefix}/waterius/10099775", example),
            (f"{prefix}/v3/water-meters@ttn/devices/kv12/up", json.dumps(uplink).encode()),
            (f"{prefix}/zhkh/gw", b"this is not json"),
            (f"{prefix}/wmbusmeters/99999999", b'{"_":"telegram","id":"99999999","total_m3":1}'),
        ]
    )
    wait_for(lambda: consumer.stats.messages >= 7)
    with session_scope() as session:
        sources = set(session.scalars(select(Reading.source)))
        reasons = sorted(session.scalars(select(DeadLetter.reason)))
    assert sources == {"mqtt:platform", "mqtt:chirpstack", "mqtt:tts", "mqtt:wmbusmeters", "mqtt:waterius"}
    assert len(reasons) == 2
    assert reasons[0].startswith("payload is not JSON")
    assert reasons[1] == "unknown wmbusmeters device '99999999'; register it first"


def consumer_process(database: str, prefix: str, client_id: str | None, *extra: str) -> subprocess.Popen[str]:
    args = ["--broker", f"mqtt://{HOST}:{PORT}", "--route", f"{prefix}/zhkh/#=platform", *extra]
    if client_id is not None:
        args += ["--client-id", client_id]
    return subprocess.Popen(
        [sys.executable, "-m", "zhkh", "ingest", "mqtt", *args],
        env=os.environ | {"ZHKH_DATABASE_URL": database},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_subscribed(process: subprocess.Popen[str]) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    for line in process.stdout:
        if "subscribed to" in line:
            time.sleep(0.3)
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError("the consumer did not subscribe")


def test_a_crash_loses_nothing_and_redelivery_changes_nothing(town: str) -> None:
    """The consumer dies the hard way right after committing its third batch, before it could
    acknowledge it. A new consumer with the same persistent session gets every message that was
    not acknowledged, including the committed ones: each is stored exactly once."""
    prefix, client_id = f"t{uuid.uuid4().hex[:8]}", f"crash-{uuid.uuid4().hex[:6]}"
    first = consumer_process(town, prefix, client_id, "--batch-size", "50", "--crash-after-commits", "3")
    wait_subscribed(first)
    publish_all(platform_messages(prefix, 600))
    assert first.wait(60) == 70, "the consumer crashed as asked"
    assert first.stdout is not None
    first.stdout.close()
    stored = count(Reading)
    assert 0 < stored < 600
    second = consumer_process(town, prefix, client_id, "--idle-exit", "3")
    output, _ = second.communicate(timeout=120)
    assert second.returncode == 0, output
    assert count(Reading) == 600
    assert count(DeadLetter) == 0
    redelivered = int(output.rsplit("stopped: ", 1)[1].split(" messages")[0])
    assert redelivered >= 600 - stored, "at least the unacknowledged messages came again"


def test_two_consumers_share_a_subscription_exactly_once(town: str) -> None:
    prefix, group = f"t{uuid.uuid4().hex[:8]}", f"g{uuid.uuid4().hex[:6]}"
    consumers = [
        consumer_process(town, prefix, f"{group}-{n}", "--group", group, "--idle-exit", "4", "--batch-size", "20")
        for n in (1, 2)
    ]
    for process in consumers:
        wait_subscribed(process)
    publish_all(platform_messages(prefix, 1000))
    outputs = [process.communicate(timeout=120)[0] for process in consumers]
    handled = [int(output.rsplit("stopped: ", 1)[1].split(" messages")[0]) for output in outputs]
    assert sum(handled) == 1000, outputs
    assert all(n > 0 for n in handled), f"both consumers took a share: {handled}"
    assert count(Reading) == 1000


def test_messages_published_while_the_consumer_is_down_wait_for_it(town: str) -> None:
    """Without --client-id the consumer comes back under the same session (its id is derived
    from the host and the database), so what was published meanwhile is delivered."""
    prefix = f"t{uuid.uuid4().hex[:8]}"
    first = consumer_process(town, prefix, None, "--idle-exit", "0.5")
    output, _ = first.communicate(timeout=60)
    assert first.returncode == 0, output
    publish_all(platform_messages(prefix, 5))
    second = consumer_process(town, prefix, None, "--idle-exit", "3")
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert count(Reading) == 5


def test_a_message_the_pipeline_fails_on_is_kept_and_the_rest_go_on(
    consumer_thread: Callable[[list[tuple[str, str]]], MqttConsumer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the pipeline trips over, the consumer finds the message, keeps it as a dead
    letter and stores the others of its batch; it does not retry the batch for ever."""
    real = process_messages

    def trips_over_poison(session: Session, messages: list[RawMessage]) -> list[MessageResult]:
        if any(b"poison" in message.payload for message in messages):
            raise RuntimeError("the pipeline tripped")
        return real(session, messages)

    monkeypatch.setattr(mqtt_consumer, "process_messages", trips_over_poison)
    prefix = f"t{uuid.uuid4().hex[:8]}"
    consumer = consumer_thread(routes(prefix))
    good = platform_messages(prefix, 4)
    publish_all([*good[:2], (f"{prefix}/zhkh/x", b'{"poison": true}'), *good[2:]])
    wait_for(lambda: consumer.stats.messages >= 5)
    assert count(Reading) == 4
    with session_scope() as session:
        [letter] = session.scalars(select(DeadLetter)).all()
        assert letter.payload == b'{"poison": true}'
        assert letter.reason == "could not be processed (RuntimeError): the pipeline tripped"
