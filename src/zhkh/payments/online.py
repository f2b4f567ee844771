"""Online payments through a provider: the provider interface, the built-in ``sandbox`` provider
(not real money: a page with Pay and Decline buttons that calls our webhook like a real acquirer
would) and the use cases around them, starting a payment and handling the provider's webhook.

A payment is started here (an ``OnlinePayment`` in state ``created``), paid on the provider's
page, and becomes a ``Payment`` only when the provider's signed webhook says it succeeded; that
webhook may arrive any number of times and adds the payment once. See docs/online-payments.md.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhkh.core.clock import utc_now
from zhkh.core.config import Settings
from zhkh.core.errors import Conflict, DomainError, InvalidInput, NotFound, Unauthorized
from zhkh.core.money import format_rubles, parse_rubles
from zhkh.core.periods import Period, local_date
from zhkh.housing.models import Account
from zhkh.payments.models import OnlinePayment, OnlineState, Payment, PaymentSource
from zhkh.payments.service import Incoming, take_in

SANDBOX = "sandbox"
SIGNATURE_HEADER = "X-Sandbox-Signature"
WEBHOOK_PATH = "/api/v1/payments/webhooks/{provider}"
SANDBOX_PAGE_PATH = "/sandbox/pay/{token}"


# --- errors ------------------------------------------------------------------------------------


class BadSignature(Unauthorized):
    """A webhook whose signature is missing or wrong: it is not from the provider."""


class MalformedWebhook(InvalidInput):
    """A correctly signed webhook whose body is not what the provider promised to send."""


class OnlinePaymentNotFound(NotFound):
    pass


class WebhookMismatch(Conflict):
    """The webhook's amount or account is not what the payment was created with."""


class OnlinePaymentCompleted(Conflict):
    """The payment already ended the other way (succeeded, then failed, or the reverse)."""


class UnknownProvider(NotFound):
    pass


class WebhookNotDelivered(DomainError):
    """The sandbox could not deliver its webhook to the platform."""

    status_code = 502


# --- the provider interface --------------------------------------------------------------------


class EventKind(StrEnum):
    SUCCEEDED = "payment.succeeded"
    FAILED = "payment.failed"


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """What a provider's verified webhook says, in the platform's terms."""

    kind: EventKind
    provider_payment_id: str
    amount: int  # kopecks
    account: str
    paid_at: datetime


class PaymentProvider(Protocol):
    """An online payment provider (acquirer). ``create`` registers ``payment`` with the provider
    (a real one calls its API here), sets ``payment.provider_payment_id`` and returns the URL to
    send the payer's browser to; after paying, the provider sends the browser to ``return_url``.
    ``verify`` authenticates a webhook from its raw body and headers (``BadSignature`` when it
    is not the provider's) and reads it into a ``WebhookEvent`` (``MalformedWebhook``)."""

    @property
    def name(self) -> str: ...

    def create(self, payment: OnlinePayment, return_url: str) -> str: ...

    def verify(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent: ...


# --- use cases ---------------------------------------------------------------------------------


def start_online_payment(
    session: Session,
    provider: PaymentProvider,
    account: str,
    amount: int,
    return_url: str,
    *,
    period: date | None = None,
) -> tuple[OnlinePayment, str]:
    """A new online payment of ``amount`` kopecks for ``account``: stored in state ``created``;
    returns it and the provider's URL to send the payer to."""
    if amount <= 0:
        raise InvalidInput(f"the amount must be positive, got {format_rubles(amount)}")
    account_id = session.scalar(select(Account.id).where(Account.number == account))
    if account_id is None:
        raise NotFound(f"account {account} is not in the registry")
    payment = OnlinePayment(
        provider=provider.name, account_id=account_id, amount=amount, period=period, state=OnlineState.CREATED
    )
    redirect_url = provider.create(payment, return_url)
    session.add(payment)
    session.flush()
    return payment, redirect_url


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    online_payment_id: int
    state: OnlineState
    payment_id: int | None
    repeated: bool  # the webhook had been handled before; nothing was added


def handle_webhook(
    session: Session, provider: PaymentProvider, body: bytes, headers: Mapping[str, str], *, zone: ZoneInfo
) -> WebhookOutcome:
    """Verify a provider's webhook and apply it: a success records the payment once (by the
    provider's payment id) and allocates it; a failure marks the payment failed. The same
    webhook again changes nothing."""
    event = provider.verify(body, headers)
    online = session.scalar(
        select(OnlinePayment)
        .where(OnlinePayment.provider == provider.name, OnlinePayment.provider_payment_id == event.provider_payment_id)
        .with_for_update()
    )
    if online is None:
        raise OnlinePaymentNotFound(f"{provider.name} payment {event.provider_payment_id!r} was never created here")
    number = session.scalar(select(Account.number).where(Account.id == online.account_id))
    if event.amount != online.amount or event.account != number:
        raise WebhookMismatch(
            f"{provider.name} payment {event.provider_payment_id!r} was created for account {number},"
            f" {format_rubles(online.amount)} rubles; the webhook says account {event.account},"
            f" {format_rubles(event.amount)} rubles"
        )
    wanted = OnlineState.SUCCEEDED if event.kind is EventKind.SUCCEEDED else OnlineState.FAILED
    if online.state is wanted:
        return WebhookOutcome(online.id, online.state, online.payment_id, repeated=True)
    if online.state is not OnlineState.CREATED:
        raise OnlinePaymentCompleted(
            f"{provider.name} payment {event.provider_payment_id!r} has already {online.state.value};"
            f" it cannot become {wanted.value}"
        )
    if wanted is OnlineState.SUCCEEDED:
        online.payment_id = _record(session, provider.name, online, number, event, zone)
    online.state, online.completed_at = wanted, utc_now()
    session.flush()
    return WebhookOutcome(online.id, online.state, online.payment_id, repeated=False)


def _record(
    session: Session, provider: str, online: OnlinePayment, account: str, event: WebhookEvent, zone: ZoneInfo
) -> int:
    external_id = f"{provider}:{online.provider_payment_id}"
    incoming = Incoming(
        external_id=external_id,
        amount=online.amount,
        paid_on=local_date(event.paid_at, zone),
        account=account,
        period=online.period,
        purpose=f"online payment {online.id} through {provider}",
    )
    result = take_in(session, PaymentSource.ONLINE, [incoming], recorded_by=provider)
    if result.recorded:
        return result.recorded[0]
    # Recorded before under the same id (the payment row exists, the state was not yet set).
    existing = session.scalar(
        select(Payment.id).where(Payment.source == PaymentSource.ONLINE, Payment.external_id == external_id)
    )
    assert existing is not None, f"payment {external_id} is neither new nor stored"
    return existing


# --- the sandbox provider ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SandboxCheckout:
    """What the sandbox page shows about a payment."""

    token: str
    account: str
    amount: int
    period: date | None
    state: OnlineState


class SandboxProvider:
    """A stand-in acquirer for demos and tests; no real money moves. Its payment page lives in
    this very server (``/sandbox/pay/{token}``, the token being the secret); paying or declining
    there makes it call the platform's webhook over HTTP, signed with HMAC-SHA256 of the raw
    body under ``sandbox_webhook_secret``, exactly as a real provider would."""

    def __init__(self, secret: str, public_base_url: str, transport: httpx.BaseTransport | None = None) -> None:
        self.secret = secret.encode()
        self.base_url = public_base_url.rstrip("/")
        self.transport = transport  # tests may hand in their own

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxProvider:
        return cls(settings.sandbox_webhook_secret, settings.public_base_url)

    @property
    def name(self) -> str:
        return SANDBOX

    @property
    def webhook_url(self) -> str:
        return self.base_url + WEBHOOK_PATH.format(provider=SANDBOX)

    # The provider interface.

    def create(self, payment: OnlinePayment, return_url: str) -> str:
        payment.provider_payment_id = secrets.token_urlsafe(24)
        query = urlencode(
            {"return_url": return_url, "sig": self.return_signature(payment.provider_payment_id, return_url)}
        )
        return f"{self.base_url}{SANDBOX_PAGE_PATH.format(token=payment.provider_payment_id)}?{query}"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        given = _header(headers, SIGNATURE_HEADER)
        if not given:
            raise BadSignature(f"the webhook has no {SIGNATURE_HEADER} header")
        if not hmac.compare_digest(given.encode(), self.signature(body).encode()):
            raise BadSignature(f"the webhook's {SIGNATURE_HEADER} does not match its body")
        return _read_event(body)

    # The sandbox's own side.

    def signature(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()

    def return_signature(self, token: str, return_url: str) -> str:
        """Binds the return URL to the payment, so the page never redirects to a URL that a
        stranger appended to somebody's payment link."""
        return hmac.new(self.secret, f"return\n{token}\n{return_url}".encode(), hashlib.sha256).hexdigest()[:32]

    def valid_return_url(self, token: str, return_url: str | None, sig: str | None) -> str | None:
        if not return_url or not sig:
            return None
        return (
            return_url if hmac.compare_digest(sig.encode(), self.return_signature(token, return_url).encode()) else None
        )

    def webhook_body(self, checkout: SandboxCheckout, kind: EventKind, paid_at: datetime) -> bytes:
        return json.dumps(
            {
                "event": kind.value,
                "payment_id": checkout.token,
                "amount": format_rubles(checkout.amount),
                "account": checkout.account,
                "paid_at": paid_at.isoformat(),
            },
            ensure_ascii=False,
        ).encode()

    def complete(self, checkout: SandboxCheckout, pay: bool) -> None:
        """The payer pressed Pay (or Decline): tell the platform by its webhook, over HTTP."""
        body = self.webhook_body(checkout, EventKind.SUCCEEDED if pay else EventKind.FAILED, utc_now())
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: self.signature(body)}
        try:
            with httpx.Client(transport=self.transport, timeout=30) as client:
                response = client.post(self.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise WebhookNotDelivered(f"the sandbox could not reach {self.webhook_url}: {exc}") from exc
        if response.status_code != 200:
            raise WebhookNotDelivered(
                f"{self.webhook_url} answered {response.status_code} to the sandbox's webhook: {response.text[:300]}"
            )


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _read_event(body: bytes) -> WebhookEvent:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhook(f"the webhook body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedWebhook("the webhook body is not a JSON object")
    missing = [
        key for key in ("event", "payment_id", "amount", "account", "paid_at") if not isinstance(data.get(key), str)
    ]
    if missing:
        raise MalformedWebhook(f"the webhook lacks {', '.join(missing)} (each a string)")
    try:
        kind = EventKind(data["event"])
    except ValueError as exc:
        known = ", ".join(k.value for k in EventKind)
        raise MalformedWebhook(f"unknown webhook event {data['event']!r}; known: {known}") from exc
    try:
        amount = parse_rubles(data["amount"])
    except ValueError as exc:
        raise MalformedWebhook(f"the webhook's amount: {exc}") from exc
    try:
        paid_at = datetime.fromisoformat(data["paid_at"])
    except ValueError as exc:
        raise MalformedWebhook(f"the webhook's paid_at is not an ISO date and time: {data['paid_at']!r}") from exc
    if paid_at.tzinfo is None:
        raise MalformedWebhook(f"the webhook's paid_at has no UTC offset: {data['paid_at']!r}")
    return WebhookEvent(kind, data["payment_id"], amount, data["account"], paid_at)


def sandbox_checkout(session: Session, token: str) -> SandboxCheckout:
    row = session.execute(
        select(OnlinePayment.amount, OnlinePayment.period, OnlinePayment.state, Account.number)
        .join(Account, Account.id == OnlinePayment.account_id)
        .where(OnlinePayment.provider == SANDBOX, OnlinePayment.provider_payment_id == token)
    ).first()
    if row is None:
        raise OnlinePaymentNotFound("no sandbox payment with this link; it may have been mistyped")
    return SandboxCheckout(token, row.number, row.amount, row.period, row.state)


PROVIDERS = {SANDBOX: SandboxProvider.from_settings}


def providers(settings: Settings) -> dict[str, PaymentProvider]:
    """The providers this server offers, by name."""
    return {name: build(settings) for name, build in PROVIDERS.items()}


# --- the sandbox pages -------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f4f4; color: #222; }
.banner { background: #ffcc00; color: #000; text-align: center; padding: 1.2em; font-size: 1.6em;
  font-weight: bold; border-bottom: 6px dashed #000; }
.banner small { display: block; font-size: 0.6em; font-weight: normal; }
main { max-width: 32em; margin: 2em auto; background: #fff; padding: 1.5em 2em; border-radius: 8px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 0.5em 1em; }
dt { color: #666; } dd { margin: 0; font-weight: bold; }
.en { color: #777; font-size: 0.85em; font-weight: normal; }
button { font-size: 1.2em; padding: 0.6em 1.4em; margin-right: 1em; border: 0; border-radius: 6px; cursor: pointer; }
.pay { background: #2e7d32; color: #fff; } .decline { background: #c62828; color: #fff; }
"""


def _page(title: str, content: str) -> str:
    return f"""<!doctype html>
<html lang="ru">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)} — песочница / sandbox</title><style>{_STYLE}</style></head>
<body>
<div class="banner" role="alert">ПЕСОЧНИЦА — ненастоящие деньги<small>SANDBOX — not real money</small></div>
<main>
{content}
</main>
</body>
</html>
"""


def _state_ru(state: OnlineState) -> str:
    return {OnlineState.CREATED: "ожидает оплаты", OnlineState.SUCCEEDED: "оплачен", OnlineState.FAILED: "отклонён"}[
        state
    ]


def sandbox_page(checkout: SandboxCheckout, return_url: str | None, sig: str | None) -> str:
    """The payment page: account, amount, period, and the Pay and Decline buttons."""
    e = html.escape
    period = str(Period.of(checkout.period)) if checkout.period else "—"
    state = f'{e(_state_ru(checkout.state))} <span class="en">/ {e(checkout.state.value)}</span>'
    details = f"""<h1>Оплата ЖКУ <span class="en">/ Utility payment</span></h1>
<dl>
<dt>Лицевой счёт <span class="en">/ Account</span></dt><dd>{e(checkout.account)}</dd>
<dt>Сумма <span class="en">/ Amount</span></dt><dd>{e(format_rubles(checkout.amount))} ₽</dd>
<dt>Период <span class="en">/ Period</span></dt><dd>{e(period)}</dd>
<dt>Состояние <span class="en">/ State</span></dt><dd>{state}</dd>
</dl>"""
    if checkout.state is not OnlineState.CREATED:
        return _page(
            "Платёж завершён",
            details + '\n<p>Этот платёж уже завершён. <span class="en">This payment is already complete.</span></p>',
        )
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{e(value)}">'
        for name, value in (("return_url", return_url), ("sig", sig))
        if value
    )
    form = f"""<form method="post" action="{e(SANDBOX_PAGE_PATH.format(token=checkout.token))}">
{hidden}
<button class="pay" type="submit" name="action" value="pay">Оплатить <span class="en">/ Pay</span></button>
<button class="decline" type="submit" name="action" value="decline">Отклонить <span class="en">/ Decline</span></button>
</form>
<p class="en">Нажатие кнопки отправит платформе подписанное уведомление (webhook), как это делает настоящий банк.
Pressing a button sends the platform a signed webhook, as a real acquirer does.</p>"""
    return _page("Оплата ЖКУ", details + "\n" + form)


def sandbox_message_page(title: str, message_ru: str, message_en: str) -> str:
    """A page with one message: done, not found, could not deliver."""
    e = html.escape
    return _page(title, f'<h1>{e(title)}</h1>\n<p>{e(message_ru)}</p>\n<p class="en">{e(message_en)}</p>')
