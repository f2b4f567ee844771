"""How messages leave the platform: e-mail over SMTP and SMS through an HTTP gateway. In-app
notifications never leave; they are rows the resident's app reads."""

from __future__ import annotations

import re
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol

import httpx

from zhkh.core.config import Settings


class TransportError(Exception):
    """The channel did not take the message; it will be retried."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    key: str  # the delivery's dedupe key: the same message always has the same id
    address: str
    subject: str
    body: str


class Transport(Protocol):
    def send(self, message: Outgoing) -> None: ...


def message_id(key: str, sender: str) -> str:
    """The same Message-ID for every attempt at one delivery (its dedupe key), so that if a
    crash makes us send it twice, mail clients show one message. (``make_msgid`` would add the
    time, the pid and a random number.)"""
    domain = sender.rpartition("@")[2].strip("<> ") or "zhkh.local"
    return f"<{re.sub(r'[^A-Za-z0-9_.-]', '.', key)}@{domain}>"


class SmtpTransport:
    def __init__(self, settings: Settings) -> None:
        if not settings.smtp_host:
            raise TransportError("e-mail is not configured (ZHKH_SMTP_HOST)")
        self.settings = settings

    def send(self, message: Outgoing) -> None:
        email = EmailMessage()
        email["From"] = self.settings.smtp_from
        email["To"] = message.address
        email["Subject"] = message.subject
        email["Message-ID"] = message_id(message.key, self.settings.smtp_from)
        email.set_content(message.body)
        try:
            with smtplib.SMTP(self.settings.smtp_host or "", self.settings.smtp_port, timeout=30) as smtp:
                if self.settings.smtp_starttls:
                    smtp.starttls()
                if self.settings.smtp_username:
                    smtp.login(self.settings.smtp_username, self.settings.smtp_password or "")
                smtp.send_message(email)
        except (OSError, smtplib.SMTPException) as exc:
            raise TransportError(f"SMTP {self.settings.smtp_host}:{self.settings.smtp_port}: {exc}") from exc


class SmsGatewayTransport:
    """POSTs ``{"to": "+7...", "text": "...", "id": "<dedupe key>"}`` as JSON to the configured URL
    with ``Authorization: Bearer <token>``; any 2xx is success. A generic webhook: an aggregator
    with its own API takes a small adapter in front of it (docs/notifications.md)."""

    def __init__(self, settings: Settings, client: httpx.Client | None = None) -> None:
        if not settings.sms_gateway_url:
            raise TransportError("SMS is not configured (ZHKH_SMS_GATEWAY_URL)")
        self.url = settings.sms_gateway_url
        self.token = settings.sms_gateway_token
        self.client = client or httpx.Client(timeout=15)

    def send(self, message: Outgoing) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        text = f"{message.subject}. {message.body}"
        try:
            response = self.client.post(
                self.url, json={"to": message.address, "text": text, "id": message.key}, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"SMS gateway {self.url}: {exc}") from exc
        if not response.is_success:
            raise TransportError(f"SMS gateway {self.url} answered {response.status_code}: {response.text[:200]}")
