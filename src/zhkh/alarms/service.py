"""Raising, acknowledging and clearing alarms. Raising a new alarm writes ``alarm.raised`` to
the outbox in the same transaction; ``zhkh worker`` turns it into notifications."""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.alarms.models import Alarm, AlarmKind, AlarmState
from zhkh.core.clock import utc_now
from zhkh.core.errors import Conflict, NotFound
from zhkh.core.outbox import emit

RAISED_TOPIC = "alarm.raised"


class AlarmNotFound(NotFound):
    pass


class AlarmAlreadyCleared(Conflict):
    pass


def _open(session: Session, kind: AlarmKind, subject: str) -> Alarm | None:
    return session.scalar(
        select(Alarm).where(Alarm.kind == kind, Alarm.subject == subject, Alarm.state != AlarmState.CLEARED)
    )


def raise_alarm(
    session: Session,
    kind: AlarmKind,
    subject: str,
    *,
    building_id: int | None,
    account_id: int | None,
    details: dict[str, Any],
    at: datetime | None = None,
) -> tuple[Alarm, bool]:
    """Raise ``kind`` on ``subject``, or count one more occurrence of the open one. Returns the
    alarm and whether it is new (only a new alarm notifies anybody)."""
    moment = at or utc_now()
    alarm = _open(session, kind, subject)
    if alarm is not None:
        _repeat(alarm, details, moment)
        session.flush()
        return alarm, False
    return _create(session, kind, subject, building_id, account_id, details, moment), True


def _repeat(alarm: Alarm, details: dict[str, Any], moment: datetime) -> None:
    alarm.occurrences += 1
    alarm.last_seen_at = max(alarm.last_seen_at, moment)
    alarm.details = details


def _create(
    session: Session,
    kind: AlarmKind,
    subject: str,
    building_id: int | None,
    account_id: int | None,
    details: dict[str, Any],
    moment: datetime,
) -> Alarm:
    alarm = Alarm(
        kind=kind,
        subject=subject,
        building_id=building_id,
        account_id=account_id,
        state=AlarmState.ACTIVE,
        details=details,
        occurrences=1,
        raised_at=moment,
        last_seen_at=moment,
    )
    session.add(alarm)
    session.flush()
    emit(
        session,
        RAISED_TOPIC,
        {
            "alarm_id": alarm.id,
            "kind": kind.value,
            "subject": subject,
            "building_id": building_id,
            "account_id": account_id,
            "details": details,
            "raised_at": moment.isoformat(),
        },
    )
    return alarm


def clear_alarm(session: Session, kind: AlarmKind, subject: str, at: datetime | None = None) -> Alarm | None:
    """The condition no longer holds: clear the open alarm, if there is one."""
    alarm = _open(session, kind, subject)
    if alarm is not None:
        alarm.state, alarm.cleared_at = AlarmState.CLEARED, at or utc_now()
        session.flush()
    return alarm


def set_alarm(session: Session, kind: AlarmKind, subject: str, condition: bool, **context: Any) -> Alarm | None:
    """Raise when ``condition`` holds, clear when it does not: the usual end of a rule check."""
    if condition:
        return raise_alarm(session, kind, subject, **context)[0]
    return clear_alarm(session, kind, subject, context.get("at"))


def acknowledge(session: Session, alarm_id: int, by: str) -> Alarm:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise AlarmNotFound(f"no alarm {alarm_id}")
    if alarm.state is AlarmState.CLEARED:
        raise AlarmAlreadyCleared(f"alarm {alarm_id} was cleared on {alarm.cleared_at}")
    if alarm.state is AlarmState.ACTIVE:
        alarm.state, alarm.acknowledged_at, alarm.acknowledged_by = AlarmState.ACKNOWLEDGED, utc_now(), by
        session.flush()
    return alarm


def clear_by_hand(session: Session, alarm_id: int) -> Alarm:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise AlarmNotFound(f"no alarm {alarm_id}")
    if alarm.state is not AlarmState.CLEARED:
        alarm.state, alarm.cleared_at = AlarmState.CLEARED, utc_now()
        session.flush()
    return alarm


def open_alarms(
    session: Session,
    *,
    building_id: int | None = None,
    account_id: int | None = None,
    kinds: Sequence[AlarmKind] = (),
    subjects: Collection[str] = (),
) -> list[Alarm]:
    statement = select(Alarm).where(Alarm.state != AlarmState.CLEARED).order_by(Alarm.raised_at)
    if subjects:
        statement = statement.where(Alarm.subject.in_(subjects))
    if building_id is not None:
        statement = statement.where(Alarm.building_id == building_id)
    if account_id is not None:
        statement = statement.where(Alarm.account_id == account_id)
    if kinds:
        statement = statement.where(Alarm.kind.in_(kinds))
    return list(session.scalars(statement))


@dataclass(frozen=True, slots=True)
class Finding:
    """A subject on which a rule's condition holds: where it is and what to say about it."""

    building_id: int | None
    account_id: int | None
    details: dict[str, Any]


def reconcile(
    session: Session,
    kind: AlarmKind,
    holding: Mapping[str, Finding],
    evaluated: Container[str] | None = None,
    at: datetime | None = None,
) -> dict[str, int]:
    """Bring the open alarms of ``kind`` in line with a rule's run: raise (or repeat) for every
    subject in ``holding``; clear open alarms on subjects that were ``evaluated`` (all subjects
    when None) and no longer hold. One query for the open alarms, however many subjects.
    Returns counts raised / updated / cleared."""
    moment = at or utc_now()
    already_open = {alarm.subject: alarm for alarm in open_alarms(session, kinds=[kind])}
    counts = {"raised": 0, "updated": 0, "cleared": 0}
    for subject, finding in holding.items():
        alarm = already_open.get(subject)
        if alarm is None:
            _create(session, kind, subject, finding.building_id, finding.account_id, finding.details, moment)
            counts["raised"] += 1
        else:
            _repeat(alarm, finding.details, moment)
            counts["updated"] += 1
    for subject, alarm in already_open.items():
        if subject not in holding and (evaluated is None or subject in evaluated):
            alarm.state, alarm.cleared_at = AlarmState.CLEARED, moment
            counts["cleared"] += 1
    session.flush()
    return counts
