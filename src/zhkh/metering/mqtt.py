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
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import PurePath
from typing import TypeVar
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.engine import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from zhkh.core.clock import utc_now
from zhkh.core.db import session_scope
from zhkh.core.errors import InvalidInput
from zhkh.metering.iot import DEFAULT_ROUTES, FORMATS
from zhkh.metering.messages import MessageResult, MessageStatus, RawMessage, dead_letter, process_messages

log = logging.getLogger("zhkh.mqtt")
_SESSION_TAKEN_OVER = 142  # MQTT 5 reason code of a DISCONNECT
_T = TypeVar("_T")


class _Stopping(Exception):
    """Asked to stop while waiting for the database: leave the batch unacknowledged."""


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> Broker:
        """``mqtt://[user:password@]host[:port]``, or ``mqtts://`` for TLS (port 8883 by
        default, the system's certificate authorities). User and password are percent-decoded,
        so a password with ``@`` or ``:`` is written ``%40``, ``%3A``."""
        parsed = urlparse(url)
        if parsed.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parsed.hostname:
            raise InvalidInput(f"a broker is given as mqtt://host:port or mqtts://host:port, got {url!r}")
        tls = parsed.scheme in ("mqtts", "ssl")
        return cls(
            parsed.hostname,
            parsed.port or (8883 if tls else 1883),
            unquote(parsed.username) if parsed.username else None,
            unquote(parsed.password) if parsed.password else None,
            tls,
        )


def default_client_id(group: str | None, database: str | None = None) -> str:
    """A client id that is the same every time this consumer starts on this host for this
    database: the broker keeps the session (and the messages that arrive meanwhile) under it.
    Random ids would leave a new session behind at every restart and lose what was queued for
    the old one."""
    parts = ["zhkh-ingest", socket.gethostname(), PurePath(database).stem if database else "", group or ""]
    return "-".join(re.sub(r"[^A-Za-z0-9_-]", "-", part)[:40] for part in parts if part)


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
            client_id=client_id or default_client_id(group, engine.url.database),
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if broker.username:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set()
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
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

    def _on_disconnect(
        self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "value", None) == _SESSION_TAKEN_OVER:
            log.error(
                "another client connected with client id %r and took this consumer's session; "
                "give each consumer its own --client-id",
                client._client_id.decode(),
            )
        elif getattr(reason, "is_failure", False):
            log.warning("disconnected from the broker (%s); reconnecting", reason)

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
        """Commit the batch, then acknowledge it. Nothing is lost and nothing is counted twice:
        while the database is away the batch waits (unacknowledged) and is tried again; a message
        the pipeline cannot handle goes to the dead letters and does not hold up the others."""
        routed = [message for message in map(self._raw, batch) if message is not None]
        try:
            results = self._store(routed, stop)
        except _Stopping:
            return
        if self.crash_after_commits is not None and self.stats.batches + 1 >= self.crash_after_commits:
            os._exit(70)  # committed, not acknowledged: the broker must deliver these again
        for delivery in batch:
            if delivery.qos > 0:
                self._client.ack(delivery.mid, delivery.qos)
        self._count(batch, results)

    def _store(self, routed: list[RawMessage], stop: threading.Event) -> list[MessageResult]:
        try:
            return self._retrying(partial(self._commit, routed), stop)
        except _Stopping:
            raise
        except Exception:
            log.exception("a batch of %d messages failed; storing them one by one", len(routed))
        results: list[MessageResult] = []
        for message in routed:
            try:
                results += self._retrying(partial(self._commit, [message]), stop)
            except _Stopping:
                raise
            except Exception as exc:
                reason = f"could not be processed ({type(exc).__name__}): {str(exc)[:300]}"
                results.append(self._retrying(partial(self._bury, message, reason), stop))
        return results

    def _commit(self, messages: list[RawMessage]) -> list[MessageResult]:
        with session_scope(self.engine) as session:
            return process_messages(session, messages)

    def _bury(self, message: RawMessage, reason: str) -> MessageResult:
        with session_scope(self.engine) as session:
            return dead_letter(session, message, reason)

    def _retrying(self, work: Callable[[], _T], stop: threading.Event) -> _T:
        """Run ``work``, again and again while the database cannot be reached (and only then:
        any other error is about the messages, and retrying would never end)."""
        delay = 0.5
        while True:
            try:
                return work()
            except (OperationalError, InterfaceError):
                if stop.is_set():
                    raise _Stopping from None
                log.exception("the database is unreachable; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 30)

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
