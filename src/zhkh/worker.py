"""``zhkh worker``: delivers the outbox to the modules that react to it, runs the scheduled
alarm checks, and sends notifications. Stateless apart from the database: run several and
they share the work (PostgreSQL row locks with SKIP LOCKED keep them apart)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine

from zhkh.core.clock import utc_now
from zhkh.core.config import Settings, get_settings
from zhkh.core.db import session_factory, session_scope
from zhkh.core.outbox import Handler, deliver_pending
from zhkh.metering.alarm_checks import on_readings_arrived, run_scheduled_checks
from zhkh.notify.channels import SmsGatewayTransport, SmtpTransport, Transport
from zhkh.notify.models import Channel
from zhkh.notify.service import claim_due, plan_alarm_deliveries, send_claimed
from zhkh.payments.service import on_period_closed

log = logging.getLogger("zhkh.worker")


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
                if report["outbox"]["delivered"] or any(report["notifications"].values()):
                    log.info("worker: %s", report)
            except Exception:
                log.exception("worker cycle failed; retrying")
            time.sleep(interval)


def run_worker_once(engine: Engine) -> dict[str, Any]:
    return Worker(engine).run_once()
