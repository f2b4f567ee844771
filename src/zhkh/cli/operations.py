"""``zhkh worker | alarms | contacts``: the background worker, alarms, who gets notified."""

from __future__ import annotations

import logging

import typer
from rich.table import Table

from zhkh.cli.output import console

alarms = typer.Typer(help="Alarms: list, acknowledge, clear, check now.")
contacts = typer.Typer(help="Who is notified of alarms, and by which channels.")


def worker(
    once: bool = typer.Option(False, "--once", help="do what is due now and exit"),
    interval: float = typer.Option(1.0, "--interval", help="seconds between cycles"),
) -> None:
    """Deliver the outbox, run the hourly alarm checks, send e-mail and SMS with retries.

    The outbox carries alarm notifications and consumption updates after late readings."""
    from zhkh.core.db import get_engine
    from zhkh.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runner = Worker(get_engine())
    if once:
        report = runner.run_once()
        console.print(
            f"outbox: {report['outbox']['delivered']} delivered, {report['outbox']['failed']} failed; "
            f"notifications: {report['notifications']['sent']} sent, {report['notifications']['retry']} to retry, "
            f"{report['notifications']['failed']} failed"
        )
        return
    runner.run_forever(interval)


@alarms.command("list")
def list_alarms(include_cleared: bool = typer.Option(False, "--all", help="cleared ones too")) -> None:
    from sqlalchemy import select

    from zhkh.alarms.models import Alarm, AlarmState
    from zhkh.core.db import session_scope

    table = Table("id", "kind", "subject", "state", "occurrences", "raised", "last seen")
    with session_scope() as session:
        statement = select(Alarm).order_by(Alarm.raised_at.desc()).limit(500)
        if not include_cleared:
            statement = statement.where(Alarm.state != AlarmState.CLEARED)
        for alarm in session.scalars(statement):
            table.add_row(
                str(alarm.id),
                alarm.kind,
                alarm.subject,
                alarm.state,
                str(alarm.occurrences),
                alarm.raised_at.isoformat(timespec="minutes"),
                alarm.last_seen_at.isoformat(timespec="minutes"),
            )
    console.print(table)


@alarms.command("ack")
def ack_alarm(alarm_id: int = typer.Argument(...), by: str = typer.Option("operator", "--by")) -> None:
    from zhkh.alarms.service import acknowledge
    from zhkh.core.db import session_scope

    with session_scope() as session:
        alarm = acknowledge(session, alarm_id, by)
    console.print(f"alarm {alarm.id} ({alarm.kind} on {alarm.subject}) acknowledged")


@alarms.command("clear")
def clear_alarm_command(alarm_id: int = typer.Argument(...)) -> None:
    from zhkh.alarms.service import clear_by_hand
    from zhkh.core.db import session_scope

    with session_scope() as session:
        alarm = clear_by_hand(session, alarm_id)
    console.print(f"alarm {alarm.id} cleared")


@alarms.command("check")
def check_alarms() -> None:
    """Run the scheduled checks now (no data, leaks, verification, missing readings)."""
    from zhkh.core.db import session_scope
    from zhkh.metering.alarm_checks import run_scheduled_checks

    with session_scope() as session:
        report = run_scheduled_checks(session)
    for kind, counts in report.items():
        console.print(
            f"{kind}: " + ", ".join(f"{value} {key}" for key, value in counts.items())
            if counts
            else f"{kind}: nothing to check"
        )


@contacts.command("add")
def add_contact_command(
    name: str = typer.Option(..., "--name"),
    account: str | None = typer.Option(None, "--account", help="a resident of this personal account"),
    operator: bool = typer.Option(False, "--operator", help="an operator (of --building, or of all buildings)"),
    building: str | None = typer.Option(None, "--building"),
    email: str | None = typer.Option(None, "--email"),
    phone: str | None = typer.Option(None, "--phone"),
    language: str = typer.Option("ru", "--lang", help="ru or en"),
) -> None:
    """Add a resident (--account) or an operator (--operator [--building])."""
    from zhkh.core.db import session_scope
    from zhkh.notify.models import ContactKind
    from zhkh.notify.service import add_contact

    kind = ContactKind.OPERATOR if operator else ContactKind.RESIDENT
    with session_scope() as session:
        contact = add_contact(
            session,
            kind,
            name,
            email=email,
            phone=phone,
            language=language,
            account_number=account,
            building_code=building,
        )
    console.print(f"contact {contact.id} ({kind}) added")


@contacts.command("prefer")
def prefer_command(
    contact_id: int = typer.Argument(...),
    kind: str = typer.Argument(..., help="alarm kind, e.g. leak"),
    channel: list[str] = typer.Option([], "--channel", help="email, sms or in_app; repeatable; none silences"),
) -> None:
    """Choose the channels a contact gets for one kind of alarm."""
    from zhkh.core.db import session_scope
    from zhkh.notify.service import set_preference

    with session_scope() as session:
        preference = set_preference(session, contact_id, kind, channel)
    console.print(f"contact {contact_id}: {kind} -> {', '.join(preference.channels) or 'nothing'}")
