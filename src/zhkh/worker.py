"""``zhkh worker``: delivers the outbox to the modules that react to it, runs the scheduled
alarm checks, and sends notifications. Stateless apart from the database: run several and
they share the work (PostgreSQL row locks with SKIP LOCKED keep them apart)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from zhkh.billing import ledger_facts as billing_facts
from zhkh.core.clock import utc_now
from zhkh.core.config import Settings, get_settings
from zhkh.core.db import session_factory, session_scope
from zhkh.core.outbox import Handler, deliver_pending
from zhkh.finance import ledger_facts as finance_facts
from zhkh.ledger.note import parse_signer_key
from zhkh.ledger.publisher import Publisher
from zhkh.ledger.sequencer import FactReader, Sequencer, UnreadableFact
from zhkh.metering.alarm_checks import on_readings_arrived, run_scheduled_checks
from zhkh.notify.channels import SmsGatewayTransport, SmtpTransport, Transport
from zhkh.notify.models import Channel
from zhkh.notify.service import claim_due, plan_alarm_deliveries, send_claimed
from zhkh.payments.service import on_period_closed

log = logging.getLogger("zhkh.worker")


def fact_readers() -> dict[str, FactReader]:
    """Outbox topics whose messages are money facts for the ledger, and who reads them."""
    readers: dict[str, FactReader] = {billing_facts.TOPIC: billing_facts.read_facts}
    readers.update(dict.fromkeys(finance_facts.TOPICS, finance_facts.read_facts))
    return readers


def log_publisher(settings: Settings) -> Publisher | None:
    """The checkpoint publisher, when the log's key is in place (``zhkh ledger keygen``)."""
    key_file = Path(settings.ledger_key_file)
    if not key_file.is_file():
        return None
    return Publisher.from_settings(settings, parse_signer_key(key_file.read_text().strip()))


def handlers() -> dict[str, Handler]:
    """Outbox topics and who reacts to them."""
    return {
        "metering.readings_arrived": on_readings_arrived,
        "alarm.raised": plan_alarm_deliveries,
        "billing.closed": on_period_closed,
    }


def transports(settings: Settings) -> dict[Channel, Transport]:
    """The channels that are configured; a delivery on another waits and is retried."""
    configured: dict[Channel, Transport] = {}
    if settings.smtp_host:
        configured[Channel.EMAIL] = SmtpTransport(settings)
    if settings.sms_gateway_url:
        configured[Channel.SMS] = SmsGatewayTransport(settings)
    return configured


@dataclass
class Worker:
    engine: Engine
    settings: Settings = field(default_factory=get_settings)
    schedule_every: timedelta = timedelta(hours=1)
    last_schedule: datetime | None = None
    clock: Callable[[], datetime] = utc_now
    sequencer: Sequencer = field(default_factory=lambda: Sequencer(fact_readers()))
    publisher: Publisher | None = None

    def __post_init__(self) -> None:
        if self.publisher is None:
            self.publisher = log_publisher(self.settings)

    def run_once(self) -> dict[str, Any]:
        """Everything that is due now: outbox, scheduled checks (when their time has come),
        notifications. Returns what it did."""
        factory = session_factory(self.engine)
        report: dict[str, Any] = {"outbox": {"delivered": 0, "failed": 0}}
        for _ in range(10_000):  # drain, but never loop forever on a poisoned queue
            counts = deliver_pending(factory, handlers(), now=self.clock())
            for key, value in counts.items():
                report["outbox"][key] += value
            if counts["delivered"] + counts["failed"] == 0:
                break
        now = self.clock()
        if self.last_schedule is None or now - self.last_schedule >= self.schedule_every:
            with session_scope(self.engine) as session:
                report["scheduled"] = run_scheduled_checks(session, now)
            self.last_schedule = now
            # Alarms raised by the schedule are in the outbox now: plan their notifications.
            counts = deliver_pending(factory, handlers(), now=self.clock())
            report["outbox"]["delivered"] += counts["delivered"]
        report["notifications"] = self.send_notifications()
        report["ledger"] = self.run_ledger(factory)
        return report

    def run_ledger(self, factory: Callable[[], Session]) -> dict[str, Any]:
        """Money facts into the log; a checkpoint published when one is due. A message the
        sequencer cannot read stops the log there until someone repairs it, but what is logged
        already is still published (residents can prove it meanwhile)."""
        report: dict[str, Any] = {"appended": 0, "published": None}
        try:
            report["appended"] = self.sequencer.run_once(factory)
        except UnreadableFact as exc:
            log.error("ledger stopped: %s", exc)
            report["appended"] = exc.appended
            report["unreadable"] = str(exc)
        if self.publisher is not None:
            report["published"] = self.publisher.publish_if_due(factory)
        return report

    def send_notifications(self) -> dict[str, int]:
        totals = {"sent": 0, "retry": 0, "failed": 0}
        channels = transports(self.settings)
        while True:
            now = self.clock()
            with session_scope(self.engine) as session:
                claimed = claim_due(session, now)
            if not claimed:
                return totals
            with session_scope(self.engine) as session:
                counts = send_claimed(session, claimed, channels, now)
            for key, value in counts.items():
                totals[key] += value

    def run_forever(self, interval: float = 1.0) -> None:
        log.info("worker started")
        while True:
            try:
                report = self.run_once()
                busy = report["outbox"]["delivered"] or report["ledger"]["appended"]
                if busy or any(report["notifications"].values()):
                    log.info("worker: %s", report)
            except Exception:
                log.exception("worker cycle failed; retrying")
            time.sleep(interval)


def run_worker_once(engine: Engine) -> dict[str, Any]:
    return Worker(engine).run_once()
