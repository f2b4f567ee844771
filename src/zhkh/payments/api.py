"""The payments API: online payments and their providers' webhooks, the cash desk, the review
queue of unmatched payments, and the sandbox provider's payment pages (docs/online-payments.md)."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhkh.core.api import Page, PageRequest, SessionDep
from zhkh.core.config import Settings
from zhkh.core.errors import Forbidden, InvalidInput, NotFound
from zhkh.core.money import format_rubles, parse_rubles
from zhkh.core.periods import Period
from zhkh.housing.repository import account_by_number
from zhkh.identity.api import require_scope, resident_account
from zhkh.identity.errors import InvalidToken, MissingScope
from zhkh.identity.models import ApiToken
from zhkh.identity.scopes import RESIDENT_SCOPE
from zhkh.identity.service import authenticate
from zhkh.ledger.proofs import resident_proofs
from zhkh.payments.intake import record_cash
from zhkh.payments.models import OnlineState, Payment, PaymentSource, ReviewState, UnmatchedPayment
from zhkh.payments.online import (
    SANDBOX,
    OnlinePaymentNotFound,
    PaymentProvider,
    SandboxProvider,
    UnknownProvider,
    WebhookNotDelivered,
    handle_webhook,
    providers,
    sandbox_checkout,
    sandbox_message_page,
    sandbox_page,
    start_online_payment,
)
from zhkh.payments.schemas import (
    AssignIn,
    AssignOut,
    CashIn,
    CashOut,
    LedgerProofOut,
    LedgerProofsOut,
    OnlinePaymentIn,
    OnlinePaymentOut,
    StatementOut,
    StatementRowOut,
    UnmatchedOut,
    WebhookOut,
)
from zhkh.payments.service import assign
from zhkh.payments.statement import account_statement

WRITE_SCOPE = "payments:write"
router = APIRouter(tags=["payments"])
Reader = Annotated[ApiToken, Depends(require_scope("payments:read"))]
Writer = Annotated[ApiToken, Depends(require_scope(WRITE_SCOPE))]
Paging = Annotated[PageRequest, Depends()]


class InvalidAmount(InvalidInput):
    pass


def _payer(session: SessionDep, authorization: Annotated[str | None, Header()] = None) -> ApiToken:
    """A token with ``payments:write``, or a resident's token (checked against the account later)."""
    scheme, _, secret = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise InvalidToken("send the API token as 'Authorization: Bearer <token>'")
    try:
        return authenticate(session, secret.strip(), WRITE_SCOPE)
    except MissingScope:
        try:
            return authenticate(session, secret.strip(), RESIDENT_SCOPE)
        except MissingScope as exc:
            raise MissingScope(
                f"{exc.message}; paying needs {WRITE_SCOPE!r}, or 'resident' for the resident's own account"
            ) from exc


def get_providers(request: Request) -> dict[str, PaymentProvider]:
    """The configured providers; tests override this dependency."""
    settings: Settings = request.app.state.settings
    return providers(settings)


Providers = Annotated[dict[str, PaymentProvider], Depends(get_providers)]


def _amount(text: str) -> int:
    try:
        amount = parse_rubles(text)
    except ValueError as exc:
        raise InvalidAmount(f"amount: {exc}") from exc
    if amount <= 0:
        raise InvalidAmount(f"amount must be more than zero, got {text!r}")
    return amount


def _period(text: str | None) -> date | None:
    month = _month(text, "period")
    return month.first_day if month else None


# --- online payments ---------------------------------------------------------------------------


@router.post("/api/v1/payments/online", response_model=OnlinePaymentOut, status_code=201)
def post_online_payment(
    body: OnlinePaymentIn, session: SessionDep, token: Annotated[ApiToken, Depends(_payer)], provider_list: Providers
) -> OnlinePaymentOut:
    """Start an online payment: answers the provider's page to send the payer to. A resident's
    token pays for its own account only."""
    if RESIDENT_SCOPE in token.scopes and body.account != resident_account(token):
        raise Forbidden(f"a resident's token pays for its own account only, not for {body.account}")
    provider = provider_list[SANDBOX]
    payment, redirect_url = start_online_payment(
        session, provider, body.account, _amount(body.amount), body.return_url, period=_period(body.period)
    )
    return OnlinePaymentOut(id=payment.id, provider=provider.name, redirect_url=redirect_url)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


@router.post("/api/v1/payments/webhooks/{provider}", response_model=WebhookOut)
def post_webhook(
    provider: str,
    request: Request,
    session: SessionDep,
    body: Annotated[bytes, Depends(_raw_body)],
    provider_list: Providers,
) -> WebhookOut:
    """A provider's notification; its signature is its authentication (401 when it does not
    verify, and nothing is stored). The same notification again answers 200 and adds nothing."""
    if provider not in provider_list:
        raise UnknownProvider(f"no payment provider {provider!r}; known: {', '.join(provider_list)}")
    settings: Settings = request.app.state.settings
    outcome = handle_webhook(session, provider_list[provider], body, request.headers, zone=settings.zone)
    return WebhookOut(state=outcome.state.value, payment_id=outcome.payment_id, repeated=outcome.repeated)


# --- the cash desk -----------------------------------------------------------------------------


@router.post("/api/v1/payments/cash", response_model=CashOut, status_code=201)
def post_cash(body: CashIn, session: SessionDep, token: Writer, response: Response) -> CashOut:
    """A payment taken at the cash desk against a receipt; 201 with its id, or 200 with
    ``duplicate: true`` when the receipt was recorded before (the same amount), 409 when the
    receipt was recorded with another amount."""
    result = record_cash(
        session,
        body.account,
        _amount(body.amount),
        body.paid_on,
        body.receipt,
        operator=token.name,
        period=_period(body.period),
    )
    if result.recorded:
        return CashOut(payment_ids=result.recorded, duplicate=False)
    response.status_code = 200
    existing = session.scalars(
        select(Payment.id).where(Payment.source == PaymentSource.CASH_DESK, Payment.external_id == body.receipt.strip())
    )
    return CashOut(payment_ids=list(existing), duplicate=True)


# --- the review queue --------------------------------------------------------------------------


@router.get("/api/v1/payments/unmatched", response_model=Page[UnmatchedOut])
def list_unmatched(session: SessionDep, token: Reader, page: Paging) -> Page[UnmatchedOut]:
    """Payments nobody could match to an account, waiting for an operator, with the reason."""
    u = UnmatchedPayment
    query = select(
        u.id, u.source, u.external_id, u.amount, u.paid_on, u.payer, u.payer_inn, u.purpose, u.reason, u.recorded_at
    ).where(u.state == ReviewState.WAITING)
    rows, cursor = page.fetch(session, query, u.id)
    items = [
        UnmatchedOut(
            id=row.id,
            source=row.source.value,
            external_id=row.external_id,
            amount=format_rubles(row.amount),
            paid_on=row.paid_on,
            payer=row.payer,
            payer_inn=row.payer_inn,
            purpose=row.purpose,
            reason=row.reason,
            recorded_at=row.recorded_at,
        )
        for row in rows
    ]
    return Page(items=items, next_cursor=cursor)


@router.post("/api/v1/payments/unmatched/{unmatched_id}/assign", response_model=AssignOut)
def post_assign(unmatched_id: int, body: AssignIn, session: SessionDep, token: Writer) -> AssignOut:
    """Assign a waiting payment to an account; it is then allocated like any other. The token's
    name is kept as the operator."""
    payment = assign(session, unmatched_id, body.account, token.name)
    return AssignOut(payment_id=payment.id, account=body.account, amount=format_rubles(payment.amount))


# --- the sandbox provider's pages (no token: the link's token is the secret) -------------------

sandbox = APIRouter(prefix="/sandbox", tags=["sandbox"])


def _html(page: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


def _not_found() -> HTMLResponse:
    return _html(
        sandbox_message_page(
            "Платёж не найден",
            "Такой ссылки на оплату нет: возможно, в ней опечатка.",
            "No payment with this link; it may have been mistyped.",
        ),
        404,
    )


def _sandbox_provider(provider_list: dict[str, PaymentProvider]) -> SandboxProvider:
    provider = provider_list[SANDBOX]
    assert isinstance(provider, SandboxProvider)
    return provider


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, read without python-multipart."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


@sandbox.get("/pay/{token}", response_class=HTMLResponse)
def get_sandbox_page(
    token: str,
    session: SessionDep,
    provider_list: Providers,
    return_url: str | None = None,
    sig: str | None = None,
) -> HTMLResponse:
    """The sandbox's payment page with Pay and Decline."""
    try:
        checkout = sandbox_checkout(session, token)
    except OnlinePaymentNotFound:
        return _not_found()
    valid = _sandbox_provider(provider_list).valid_return_url(token, return_url, sig)
    return _html(sandbox_page(checkout, valid, sig if valid else None))


@sandbox.post("/pay/{token}", response_class=HTMLResponse)
def post_sandbox_page(
    token: str, request: Request, form: Annotated[dict[str, str], Depends(_form)], provider_list: Providers
) -> Response:
    """Pay or decline: the sandbox calls the platform's webhook over HTTP, then sends the browser
    back to the return URL (303), or shows that it is done when there is none."""
    factory: sessionmaker[Session] = request.app.state.session_factory
    # A short session of its own: none stays open while the webhook is handled.
    with factory() as session:
        try:
            checkout = sandbox_checkout(session, token)
        except OnlinePaymentNotFound:
            return _not_found()
    action = form.get("action")
    if action not in ("pay", "decline"):
        return _html(
            sandbox_message_page(
                "Неизвестное действие", "Нажмите «Оплатить» или «Отклонить».", "Press Pay or Decline."
            ),
            400,
        )
    provider = _sandbox_provider(provider_list)
    return_url = provider.valid_return_url(token, form.get("return_url"), form.get("sig"))
    if checkout.state is not OnlineState.CREATED:
        return _html(sandbox_page(checkout, None, None), 409)
    try:
        provider.complete(checkout, pay=action == "pay")
    except WebhookNotDelivered as exc:
        return _html(
            sandbox_message_page(
                "Уведомление не доставлено", "Платформа не приняла уведомление песочницы.", exc.message
            ),
            502,
        )
    if return_url:
        return RedirectResponse(return_url, status_code=303)
    if action == "pay":
        return _html(sandbox_message_page("Оплачено", "Платёж выполнен (понарошку).", "Paid (not really)."))
    return _html(sandbox_message_page("Отклонено", "Платёж отклонён.", "The payment was declined."))


router.include_router(sandbox)


# --- the account statement ----------------------------------------------------------------------


def _statement(session: Session, account: str, first: str | None, last: str | None) -> StatementOut:
    rows = account_statement(session, account, _month(first, "from"), _month(last, "to"))
    return StatementOut(account=account, rows=[StatementRowOut(**row.as_text()) for row in rows])


def _month(text: str | None, what: str) -> Period | None:
    if text is None:
        return None
    try:
        return Period.parse(text)
    except ValueError as exc:
        raise InvalidInput(f"{what}: {exc}") from exc


From = Annotated[str | None, Query(alias="from", description="the first period, YYYY-MM")]
To = Annotated[str | None, Query(alias="to", description="the last period, YYYY-MM")]


@router.get("/api/v1/statements/{account:path}", response_model=StatementOut)
def get_statement(
    account: str, session: SessionDep, token: Reader, first: From = None, last: To = None
) -> StatementOut:
    """Per month and service: supplier, opening, accrued, paid, penalty, closing
    (``from``/``to``: YYYY-MM)."""
    return _statement(session, account, first, last)


@router.get("/api/v1/me/statement", response_model=StatementOut)
def get_my_statement(
    session: SessionDep,
    token: Annotated[ApiToken, Depends(require_scope(RESIDENT_SCOPE))],
    first: From = None,
    last: To = None,
) -> StatementOut:
    """The resident's own statement."""
    return _statement(session, resident_account(token), first, last)


@router.get("/api/v1/me/ledger-proofs", response_model=LedgerProofsOut)
def get_my_ledger_proofs(
    session: SessionDep,
    token: Annotated[ApiToken, Depends(require_scope(RESIDENT_SCOPE))],
    period: Annotated[str, Query(description="the billing period, YYYY-MM")],
) -> LedgerProofsOut:
    """The resident's entries of the period in the public ledger, each with its offline proof
    (a tlog-proof that ``zhkh ledger verify-proof`` or any tlog tool checks; docs/ledger.md)."""
    number = resident_account(token)
    month = _month(period, "period")
    assert month is not None
    holder = account_by_number(session, number)
    if holder is None:
        raise NotFound(f"no account {number}")
    proofs = resident_proofs(session, holder.id, number, month.first_day)
    return LedgerProofsOut(
        account=number,
        period=str(month),
        proofs=[LedgerProofOut(index=p.index, type=p.entry_type, tlog_proof=p.bundle) for p in proofs],
    )
