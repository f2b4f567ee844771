"""``zhkh ingest mqtt``: the meter consumer.

Subscribes at QoS 1 and acknowledges a message only after its readings are committed, so a crash
loses nothing (the broker redelivers) and a redelivery changes nothing (readings are idempotent).
Messages are handled in batches: one transaction and a handful of queries per batch. Several
consumers share the load through an MQTT 5 shared subscription (``--group``).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.engine import Engine

from zhkh.core.clock import utc_now
from zhkh.core.db import session_scope
from zhkh.core.errors import InvalidInput
from zhkh.metering.iot import DEFAULT_ROUTES, FORMATS
from zhkh.metering.messages import MessageResult, MessageStatus, RawMessage, process_messages

log = logging.getLogger("zhkh.mqtt")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
            raise InvalidInput(f"a broker is given as mqtt://host:port, got {url!r}")
        return cls(parsed.hostname, parsed.port or 1883, parsed.username, parsed.password)


def parse_route(text: str) -> tuple[str, str]:
    """ "pattern=format", e.g. "lora/+/up=chirpstack"."""
    pattern, _, fmt = text.rpartition("=")
    if not pattern or fmt not in FORMATS:
        raise InvalidInput(f"a route is TOPIC-PATTERN=FORMAT with FORMAT one of {', '.join(FORMATS)}, got {text!r}")
    return pattern, fmt


@dataclass(frozen=True, slots=True)
class _Delivery:
    topic: str
    payload: bytes
    retained: bool
    mid: int
    qos: int
    received_at: datetime


@dataclass
class Stats:
    messages: int = 0
    readings: int = 0
    dead_letters: int = 0
    batches: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class MqttConsumer:
    def __init__(
        self,
        engine: Engine,
        broker: Broker,
        routes: Sequence[tuple[str, str]] = DEFAULT_ROUTES,
        *,
        group: str | None = None,
        client_id: str | None = None,
        batch_size: int = 1000,
        batch_wait: float = 0.05,
        crash_after_commits: int | None = None,
    ) -> None:
        self.engine = engine
        self.broker = broker
        self.routes = list(routes)
        self.group = group
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        # Fault injection for tests: die the hard way after this many commits, before acknowledging.
        self.crash_after_commits = crash_after_commits
        self.stats = Stats()
        self.connected = threading.Event()
        self._inbox: queue.Queue[_Delivery] = queue.Queue()
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"zhkh-ingest-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        # Messages in flight to us, unacknowledged: enough for two batches (we acknowledge a batch
        # after its commit), not more: a broker looks an acknowledgement up among them.
        self.receive_maximum = min(65535, 2 * batch_size)
        self._formats: dict[str, str | None] = {}

    def subscriptions(self) -> list[str]:
        return [f"$share/{self.group}/{pattern}" if self.group else pattern for pattern, _ in self.routes]

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("broker refused the connection: %s", reason)
            return
        client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.subscriptions()])
        self.connected.set()
        log.info("connected to %s:%s, subscribed to %s", self.broker.host, self.broker.port, self.subscriptions())

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            _Delivery(message.topic, bytes(message.payload), bool(message.retain), message.mid, message.qos, utc_now())
        )

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 24 * 3600  # the broker keeps our messages while we restart
        properties.ReceiveMaximum = self.receive_maximum
        self._client.connect(self.broker.host, self.broker.port, keepalive=30, clean_start=False, properties=properties)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def run(self, stop: threading.Event, idle_exit: float | None = None) -> Stats:
        """Consume until ``stop`` is set (or nothing came for ``idle_exit`` seconds)."""
        self.start()
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                batch = self._next_batch()
                if batch:
                    self._handle(batch, stop)
                    idle_since = time.monotonic()
                elif idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                    break
        finally:
            self.stop()
        return self.stats

    def _next_batch(self) -> list[_Delivery]:
        try:
            first = self._inbox.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._inbox.get(timeout=max(remaining, 0)) if remaining > 0 else self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _handle(self, batch: list[_Delivery], stop: threading.Event) -> None:
        """Commit the batch, then acknowledge it. If the database is away, keep the batch (still
        unacknowledged) and try again: nothing is lost and nothing is counted twice."""
        routed = [message for message in map(self._raw, batch) if message is not None]
        delay = 0.5
        while True:
            try:
                with session_scope(self.engine) as session:
                    results = process_messages(session, routed)
                break
            except Exception:
                if stop.is_set():
                    return
                log.exception("could not store a batch of %d messages; retrying in %.1f s", len(batch), delay)
                time.sleep(delay)
                delay = min(delay * 2, 30)
        if self.crash_after_commits is not None and self.stats.batches + 1 >= self.crash_after_commits:
            os._exit(70)  # committed, not acknowledged: the broker must deliver these again
        for delivery in batch:
            if delivery.qos > 0:
                self._client.ack(delivery.mid, delivery.qos)
        self._count(batch, results)

    def _raw(self, delivery: _Delivery) -> RawMessage | None:
        fmt = self._format_of(delivery.topic)
        if fmt is None:
            return None  # a topic no route claims (e.g. a device's /set command echo): not ours
        return RawMessage("mqtt", fmt, delivery.topic, delivery.payload, delivery.received_at, delivery.retained)

    def _format_of(self, topic: str) -> str | None:
        """The route's format for ``topic``; remembered, as a device publishes on the same topic."""
        if topic not in self._formats:
            if len(self._formats) > 100_000:
                self._formats.clear()
            self._formats[topic] = next(
                (f for pattern, f in self.routes if mqtt.topic_matches_sub(pattern, topic)), None
            )
        return self._formats[topic]

    def _count(self, batch: list[_Delivery], results: list[MessageResult]) -> None:
        self.stats.batches += 1
        self.stats.messages += len(batch)
        for result in results:
            self.stats.by_status[result.status] = self.stats.by_status.get(result.status, 0) + 1
            if result.status is MessageStatus.DEAD_LETTER:
                self.stats.dead_letters += 1
            self.stats.readings += len(result.readings)
