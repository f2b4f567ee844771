"""Benchmark: payments on PostgreSQL: allocating an agent's registry, the monthly penalty run,
a bank statement, and rendering bills.

    python bench/payments.py --accounts 1000000                  # builds zhkh_bench_payments first
    python bench/payments.py --accounts 1000000 --skip-build     # the region is there: books anew
    python bench/payments.py --accounts 20000 --profile bench/data/payments-prof

Build: a region of N accounts (100 per building) imported through the real importers
(organisations, buildings, premises; no meters), plus a resource supplier. Seed (every run; the
payment tables and the books are emptied first): accruals of 2026-03 and 2026-04 straight into
the books with set-based SQL, one ``accrual`` transaction per period with three receivables per
account (maintenance to the manager, heating and cold water to the supplier) and the suppliers'
``accrued`` counter-postings. Then, each stage timed with its commit:

1. allocate: an agent registry of N payments, one per account (15 % pay in full, 10 % overpay,
   45 % pay part, 20 % pay April naming it, 10 % a little of March naming it; paid over June
   2026) through ``import_agent_registry``;
2. penalties: ``charge_penalties`` for August 2026 over all accounts;
3. statement: a 1CClientBankExchange statement (Windows-1251) of 100,000 incoming payment
   orders to the manager's account, dated September 2026, "Оплата ЖКУ ЛС <number> за 08.2026",
   2 % without an account number (half of those matched by the payer's name, half queued) and
   0.5 % with an unknown one, through ``import_bank_statement``;
4. bills: 10,000 accounts get a closed period 2026-08 (``billing_periods``, ``billed_accounts``
   and ``accrual_lines`` inserted set-based: three charges each, a benefit on 5 %, a
   recalculation on 2 %), then ``render_bills_to_directory(bill_documents(...), jobs=2)``.

Each stage prints its wall time (its commit, where PostgreSQL's deferred balance trigger runs,
included), rate, the time of its phases (functions of the code under test wrapped with timers
for the stage; nothing in ``src`` is changed) and its peak RSS (the high-water mark is reset
before each stage; the RSS a stage starts with, left by earlier ones, is printed too). The books
get VACUUM ANALYZE between stages, untimed, as autovacuum would after such loads. ``--profile
DIR`` writes a cProfile of each stage (and of 200 bills rendered in-process, since the workers
are outside the stage's profile) and prints the top functions. Never asserts: the figures go
into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import gc
import itertools
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: make `bench` importable

from bench.generate_region import BIC, write_region  # noqa: E402
from bench.import_premises import recreate_database, zhkh  # noqa: E402
from bench.memory import ChildrenRss, peak_rss_mib, reset_peak_rss  # noqa: E402
from bench.phases import Phases  # noqa: E402
from zhkh.billing.bills import bill_documents  # noqa: E402
from zhkh.billing.epd import BillDocument, render_bill, render_bills_to_directory  # noqa: E402
from zhkh.core.db import create_db_engine, session_scope  # noqa: E402
from zhkh.core.money import format_rubles  # noqa: E402
from zhkh.core.periods import Period  # noqa: E402
from zhkh.core.requisites import with_account_key, with_inn_check_digits  # noqa: E402
from zhkh.finance import balances as balances_module  # noqa: E402
from zhkh.payments import intake as intake_module  # noqa: E402
from zhkh.payments import penalties as penalties_module  # noqa: E402
from zhkh.payments import service as service_module  # noqa: E402
from zhkh.payments import set_allocation  # noqa: E402
from zhkh.payments.intake import import_agent_registry, import_bank_statement  # noqa: E402
from zhkh.payments.penalties import charge_penalties  # noqa: E402
from zhkh.schema import upgrade  # noqa: E402

DEBT_PERIODS = (Period(2026, 3), Period(2026, 4))
PENALTY_MONTH = Period(2026, 8)
BILL_PERIOD = Period(2026, 8)
STATEMENT_DAYS = (date(2026, 9, 1), date(2026, 9, 10))
MANAGER_ACCOUNT = with_account_key("40702810000000000001", BIC)  # as bench/generate_region.py writes it
SUPPLIER_INN = with_inn_check_digits("990000002")
SUPPLIER_ACCOUNT = with_account_key("40702810000000000002", BIC)
CORR_ACCOUNT = with_account_key("30101810000000000964", BIC, correspondent=True)
TARGETS = {"allocate": 60.0, "penalties": 60.0, "statement": 30.0, "bills": 300.0}

# Every table the stages write, emptied before seeding (CASCADE: and whatever references them).
# Money rows are append-only (row triggers refuse DELETE); TRUNCATE fires no row triggers.
PAYMENT_TABLES = (
    "postings",
    "payments",
    "unmatched_payments",
    "online_payments",
    "remittances",
    "payment_intakes",
    "finance_transactions",
    "outbox",
    "accrual_lines",
    "billed_accounts",
    "billing_problems",
    "billing_periods",
)


# --- measuring --------------------------------------------------------------------------------


def wrap_take_in(phases: Phases) -> None:
    service = service_module
    phases.wrap(service, "_without_duplicates", "duplicate check")
    phases.wrap(service, "account_ids", "account lookup")
    phases.wrap(service, "_record_matched", "recording payments")
    phases.wrap(service, "_record_unmatched", "recording unmatched")
    phases.wrap(service, "allocate_payments", "allocation")
    phases.wrap(balances_module, "open_receivables", "allocation: loading debts")
    phases.wrap(service, "_write_allocations", "allocation: writing")  # SQLite, and advances
    # The set-based path (PostgreSQL): the parts computed by the database, then written.
    phases.wrap(set_allocation, "_stage_payments", "allocation: staging payments, locking")
    phases.wrap(set_allocation, "_stage_parts", "allocation: computing parts")
    phases.wrap(set_allocation, "_write_round", "allocation: writing")


@dataclass
class Outcome:
    stage: str
    items: int
    unit: str
    seconds: float
    peak_mib: float
    start_mib: float  # RSS when the stage started (what earlier stages left)
    note: str = ""

    @property
    def target(self) -> float:
        return TARGETS[self.stage]

    @property
    def met(self) -> bool:
        return self.seconds <= self.target


def in_transaction(
    engine: Engine, work: Callable[[Session], Any], phases: Phases, profile: Path | None
) -> tuple[Any, float]:
    """Run ``work`` in one ``session_scope`` transaction; wall seconds including the commit
    (which is also added to ``phases``). The wrappers are removed afterwards."""
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    try:
        with session_scope(engine) as session:
            result = work(session)
            before_commit = time.perf_counter()
        finished = time.perf_counter()
    finally:
        if profiler:
            profiler.disable()
            assert profile is not None
            profiler.dump_stats(profile)
            show_profile(profile)
        phases.restore()
    phases.add("commit", finished - before_commit)
    return result, finished - started


def show_profile(path: Path, lines: int = 15) -> None:
    import pstats

    print(f"  profile {path} (top {lines} by own time):")
    stats = pstats.Stats(str(path), stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(lines)


def settle(engine: Engine) -> None:
    """What autovacuum would do after the loads: statistics and the visibility map (untimed)."""
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name in ("postings", "finance_transactions", "payments", "unmatched_payments", "outbox"):
            connection.execute(text(f"VACUUM (ANALYZE) {name}"))
    print(f"  (VACUUM ANALYZE of the books: {time.perf_counter() - started:.1f} s, untimed)")


# --- the region and the books ------------------------------------------------------------------


def build(accounts: int, url: str, data: Path) -> None:
    """Organisations (the manager and a resource supplier), buildings and premises through
    the real importers, each as its own process (``zhkh import ...``)."""
    paths = write_region(data / f"payments-{accounts}", accounts)
    with paths["organisations"].open("a", newline="", encoding="utf-8") as f:
        csv.writer(f).writerow(
            [
                SUPPLIER_INN,
                "990001001",
                "АО «Региональный ресурс»",
                "supplier",
                SUPPLIER_ACCOUNT,
                BIC,
                "Банк",
                CORR_ACCOUNT,
            ]
        )
    zhkh(url, "db", "upgrade")
    for kind in ("organisations", "buildings", "premises"):
        seconds, summary = zhkh(url, "import", kind, str(paths[kind]))
        print(f"  import {kind:>13}: {seconds:6.1f} s  {summary}")


def organisation_ids(engine: Engine) -> tuple[int, int]:
    with engine.connect() as connection:
        manager = connection.scalar(text("SELECT id FROM organisations WHERE role = 'manager' ORDER BY id LIMIT 1"))
        supplier = connection.scalar(text("SELECT id FROM organisations WHERE inn = :inn"), {"inn": SUPPLIER_INN})
    if manager is None or supplier is None:
        raise SystemExit("the region has no manager or no supplier: build it again (without --skip-build)")
    return int(manager), int(supplier)


def seed_books(engine: Engine) -> tuple[int, int]:
    """Empty the payment tables and the books, then post the accruals of the debt periods
    set-based: per period one ``accrual`` transaction, three receivables per account and the
    suppliers' ``accrued`` counter-postings (the deferred trigger checks the sum at commit).
    Returns the number of postings and the kopecks accrued."""
    manager, supplier = organisation_ids(engine)
    heat_per_m2 = {DEBT_PERIODS[0]: "6213.896", DEBT_PERIODS[1]: "4349.727"}  # 0.0208 Gcal/m² × 2987.45 ₽, ×0.7
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(PAYMENT_TABLES)} CASCADE"))
        for period in DEBT_PERIODS:
            transaction_id = connection.scalar(
                text(
                    "INSERT INTO finance_transactions (kind, occurred_on, source, source_id, description, recorded_at)"
                    " VALUES ('accrual', :day, 'billing_period', :source_id, :description, now()) RETURNING id"
                ),
                {
                    "day": period.last_day,
                    "source_id": period.year * 100 + period.month,
                    "description": f"accruals of {period} (bench/payments.py)",
                },
            )
            connection.execute(
                text(
                    """
                    INSERT INTO postings (transaction_id, book, account_id, service, supplier_id, period, component,
                                          amount)
                    SELECT :tx, 'receivable', a.id, s.service, s.supplier_id, :period, 'principal',
                           CASE s.service
                               WHEN 'maintenance' THEN round(p.area_m2 * 3240)::bigint
                               WHEN 'heating' THEN round(p.area_m2 * CAST(:heat AS numeric))::bigint
                               ELSE (a.residents + 1) * 38226
                           END
                    FROM accounts a
                    JOIN premises p ON p.id = a.premise_id
                    CROSS JOIN (VALUES ('maintenance', CAST(:manager AS bigint)),
                                       ('heating', CAST(:supplier AS bigint)),
                                       ('cold_water', CAST(:supplier AS bigint))) AS s(service, supplier_id)
                    ORDER BY a.id, s.service
                    """
                ),
                {
                    "tx": transaction_id,
                    "period": period.first_day,
                    "heat": heat_per_m2[period],
                    "manager": manager,
                    "supplier": supplier,
                },
            )
            connection.execute(
                text(
                    """
                    INSERT INTO postings (transaction_id, book, account_id, service, supplier_id, period, component,
                                          amount)
                    SELECT :tx, 'accrued', NULL, service, supplier_id, NULL, NULL, -sum(amount)
                    FROM postings WHERE transaction_id = :tx
                    GROUP BY service, supplier_id
                    """
                ),
                {"tx": transaction_id},
            )
        postings, accrued = connection.execute(
            text("SELECT count(*), coalesce(sum(amount), 0) FROM postings WHERE book = 'receivable'")
        ).one()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM (ANALYZE)"))
    return int(postings), int(accrued)


def account_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(text("SELECT count(*) FROM accounts")) or 0)


# --- stage 1: an agent registry ----------------------------------------------------------------


def registry_text(engine: Engine) -> tuple[bytes, int, int]:
    """One payment per account, from what it owes for each debt period: 15 % pay in full,
    10 % overpay by 500 ₽, 45 % pay 20–89 %, 20 % pay April naming it, 10 % 30 % of March
    naming it. Paid on the days of June 2026. Returns the file, the count and the kopecks."""
    march, april = (p.first_day for p in DEBT_PERIODS)
    query = text(
        """
        SELECT a.id, a.number, a.payer,
               (sum(p.amount) FILTER (WHERE p.period = :march))::bigint,
               (sum(p.amount) FILTER (WHERE p.period = :april))::bigint
        FROM accounts a
        JOIN postings p ON p.account_id = a.id AND p.book = 'receivable'
        GROUP BY a.id, a.number, a.payer
        ORDER BY a.id
        """
    )
    lines = [
        "# Реестр платежей агента (bench/payments.py), июнь 2026",
        "# operation_id;paid_on;account;period;amount;payer",
    ]
    count = total = 0
    with engine.connect().execution_options(stream_results=True, yield_per=50_000) as connection:
        for account_id, number, payer, owed_march, owed_april in connection.execute(
            query, {"march": march, "april": april}
        ):
            kind = account_id % 20
            period = ""
            if kind < 3:
                amount = owed_march + owed_april
            elif kind < 5:
                amount = owed_march + owed_april + 50_000
            elif kind < 14:
                amount = (owed_march + owed_april) * (20 + account_id * 7 % 70) // 100
            elif kind < 18:
                amount, period = owed_april, "042026"
            else:
                amount, period = max(owed_march * 30 // 100, 1), "032026"
            paid_on = f"{1 + count % 30:02d}.06.2026"
            lines.append(f"AG-{count + 1:08d};{paid_on};{number};{period};{format_rubles(amount)};{payer or ''}")
            count += 1
            total += amount
    lines.append(f"={count};{format_rubles(total)}")
    return ("\n".join(lines) + "\n").encode("utf-8"), count, total


def stage_allocate(engine: Engine, profile: Path | None) -> Outcome:
    started = time.perf_counter()
    data, count, total = registry_text(engine)
    print(
        f"  registry of {count:,} payments ({format_rubles(total)} ₽, {len(data) / 1e6:.0f} MB) written in "
        f"{time.perf_counter() - started:.1f} s (untimed)"
    )
    phases = Phases()
    phases.wrap(intake_module, "parse_agent_registry", "parsing")
    wrap_take_in(phases)
    start_mib = reset_peak_rss()
    intake, seconds = in_transaction(
        engine, lambda session: import_agent_registry(session, data, "bench-registry.txt"), phases, profile
    )
    peak = peak_rss_mib()
    with engine.connect() as connection:
        allocations, allocated, owing = connection.execute(
            text(
                """
                SELECT (SELECT count(*) FROM finance_transactions WHERE kind = 'allocation'),
                       (SELECT coalesce(sum(amount), 0) FROM postings WHERE book = 'advance' AND amount > 0),
                       (SELECT count(*) FROM (SELECT account_id FROM postings WHERE book = 'receivable'
                                              GROUP BY account_id HAVING sum(amount) > 0) AS o)
                """
            )
        ).one()
    counts = intake.result.counts()
    note = (
        f"{counts['recorded']:,} recorded, {counts['queued']} queued, {allocations:,} allocations of "
        f"{format_rubles(int(allocated))} ₽; {owing:,} accounts still owe"
    )
    print(f"  {note}")
    print(f"  phases: {phases}")
    return Outcome("allocate", count, "payments", seconds, peak, start_mib, note)


# --- stage 2: penalties ------------------------------------------------------------------------


def stage_penalties(engine: Engine, month: Period, profile: Path | None) -> Outcome:
    phases = Phases()
    penalties = penalties_module
    phases.wrap(penalties, "_charge_range", "charging ranges of accounts in the database (debts staged, both kinds)")
    phases.wrap(penalties, "_summarise", "figures per account")
    start_mib = reset_peak_rss()
    run, seconds = in_transaction(engine, lambda session: charge_penalties(session, month), phases, profile)
    peak = peak_rss_mib()
    accounts = account_count(engine)
    measured = sum(phases.seconds.values())
    phases.add("the rest", seconds - measured)
    note = (
        f"{run.accounts:,} of {accounts:,} accounts charged, {run.receivables:,} receivables, "
        f"{format_rubles(run.total)} ₽"
    )
    print(f"  {note}")
    print(f"  phases: {phases}")
    return Outcome("penalties", accounts, "accounts", seconds, peak, start_mib, note)


# --- stage 3: a bank statement -----------------------------------------------------------------


def statement_text(engine: Engine, documents: int) -> tuple[bytes, int]:
    """A 1CClientBankExchange 1.03 statement of ``documents`` incoming payment orders from
    residents to the manager's account, Windows-1251, CRLF, with correct turnovers."""
    with engine.connect() as connection:
        accounts = connection.execute(text("SELECT number, payer FROM accounts ORDER BY id")).all()
    stride = max(1, len(accounts) // documents)
    first, last = STATEMENT_DAYS
    days = (last - first).days + 1
    manager_inn = with_inn_check_digits("990000001")
    payee = [
        f"ПолучательСчет={MANAGER_ACCOUNT}",
        f"Получатель=ИНН {manager_inn} ООО «Региональная УК»",
        f"ПолучательИНН={manager_inn}",
        "ПолучательКПП=990001001",
        "Получатель1=ООО «Региональная УК»",
        f"ПолучательРасчСчет={MANAGER_ACCOUNT}",
        "ПолучательБанк1=Банк",
        "ПолучательБанк2=г. Регион",
        f"ПолучательБИК={BIC}",
        f"ПолучательКорсчет={CORR_ACCOUNT}",
    ]
    body: list[str] = []
    total = 0
    for i in range(documents):
        number, payer = accounts[(i * stride) % len(accounts)]
        day = date.fromordinal(first.toordinal() + i % days)
        amount = 100_000 + (i * 7919) % 400_000  # 1,000.00–4,999.99 ₽
        total += amount
        purpose = f"Оплата ЖКУ ЛС {number} за 08.2026"
        if i % 50 == 0:  # 2 %: no account in the purpose
            purpose = "Оплата ЖКУ за 08.2026"
            if i % 100 != 0:  # half of them from a payer nobody knows
                payer = f"Неизвестный Плательщик Номер {i}"
        elif i % 200 == 1:  # 0.5 %: an account that is not in the registry
            purpose = f"Оплата ЖКУ ЛС 9{i:07d} за 08.2026"
        payer_account = f"40817810{i:012d}"
        dated = day.strftime("%d.%m.%Y")
        body += [
            "СекцияДокумент=Платежное поручение",
            f"Номер={i % 9000 + 1}",
            f"Дата={dated}",
            f"Сумма={format_rubles(amount)}",
            f"ПлательщикСчет={payer_account}",
            f"Плательщик={payer}",
            "ПлательщикИНН=",
            f"Плательщик1={payer}",
            f"ПлательщикРасчСчет={payer_account}",
            "ПлательщикБанк1=ПАО СБЕРБАНК",
            "ПлательщикБанк2=г. Москва",
            "ПлательщикБИК=044525225",
            "ПлательщикКорсчет=30101810400000000225",
            f"ДатаСписано={dated}",
            *payee,
            f"ДатаПоступило={dated}",
            "ВидОплаты=01",
            "Очередность=5",
            f"НазначениеПлатежа={purpose}",
            "КонецДокумента",
        ]
    period = [f"ДатаНачала={first:%d.%m.%Y}", f"ДатаКонца={last:%d.%m.%Y}"]
    head = [
        "1CClientBankExchange",
        "ВерсияФормата=1.03",
        "Кодировка=Windows",
        "Отправитель=Банк",
        "Получатель=1С:Бухгалтерия предприятия",
        f"ДатаСоздания={last:%d.%m.%Y}",
        "ВремяСоздания=09:00:00",
        *period,
        f"РасчСчет={MANAGER_ACCOUNT}",
        "СекцияРасчСчет",
        *period,
        f"РасчСчет={MANAGER_ACCOUNT}",
        "НачальныйОстаток=0.00",
        f"ВсегоПоступило={format_rubles(total)}",
        "ВсегоСписано=0.00",
        f"КонечныйОстаток={format_rubles(total)}",
        "КонецРасчСчет",
    ]
    return ("\r\n".join([*head, *body, "КонецФайла"]) + "\r\n").encode("cp1251"), total


def stage_statement(engine: Engine, documents: int, profile: Path | None) -> Outcome:
    started = time.perf_counter()
    data, total = statement_text(engine, documents)
    print(
        f"  statement of {documents:,} payment orders ({format_rubles(total)} ₽, {len(data) / 1e6:.0f} MB) "
        f"written in {time.perf_counter() - started:.1f} s (untimed)"
    )
    phases = Phases()
    phases.wrap(intake_module, "parse_statement", "parsing")
    phases.wrap(intake_module, "_match", "matching")
    wrap_take_in(phases)
    start_mib = reset_peak_rss()
    intake, seconds = in_transaction(
        engine, lambda session: import_bank_statement(session, data, "bench-statement.txt"), phases, profile
    )
    peak = peak_rss_mib()
    counts = intake.result.counts()
    note = (
        f"{intake.payments_in_file:,} incoming orders: {counts['recorded']:,} matched and recorded, "
        f"{counts['queued']:,} queued for review"
    )
    print(f"  {note}")
    print(f"  phases: {phases}")
    return Outcome("statement", documents, "orders", seconds, peak, start_mib, note)


# --- stage 4: bills ----------------------------------------------------------------------------


def seed_bill_period(engine: Engine, accounts: int) -> int:
    """A closed period with lines for the first ``accounts`` accounts: the registry as billed,
    three charges each, a 50 % maintenance benefit on every 20th, a recalculation of cold water
    on every 50th. Set-based. Returns the number of lines."""
    manager, supplier = organisation_ids(engine)
    params = {"period": BILL_PERIOD.first_day, "accounts": accounts, "manager": manager, "supplier": supplier}
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO billing_periods (period, status, last_run_at, closed_at, closed_outbox_id)"
                " VALUES (:period, 'closed', now(), now(), (SELECT coalesce(max(id), 0) FROM outbox))"
            ),
            params,
        )
        connection.execute(
            text(
                """
                INSERT INTO billed_accounts (period, account_id, building_id, area, residents, owners, meter_possible)
                SELECT :period, a.id, p.building_id, p.area_m2, a.residents, 1, p.meter_possible
                FROM accounts a JOIN premises p ON p.id = a.premise_id
                ORDER BY a.id LIMIT :accounts
                """
            ),
            params,
        )
        lines = connection.execute(
            text(
                """
                INSERT INTO accrual_lines (period, account_id, service, zone, supplier_id, kind, method, quantity,
                                           unit, price, amount, inputs, corrects_period, reason)
                SELECT :period, b.account_id, s.service, 0, s.supplier_id, s.kind, s.method, s.quantity, s.unit,
                       s.price, s.amount, CAST('{}' AS json), s.corrects, s.reason
                FROM billed_accounts b
                CROSS JOIN LATERAL (VALUES
                    ('maintenance', CAST(:manager AS bigint), 'charge', 'area', b.area, 'm2', 32.40,
                     round(b.area * 3240)::bigint, NULL::date, NULL),
                    ('heating', CAST(:supplier AS bigint), 'charge', 'area_norm', round(b.area * 0.0208, 4), 'Gcal',
                     2987.45, round(round(b.area * 0.0208, 4) * 298745)::bigint, NULL::date, NULL),
                    ('cold_water', CAST(:supplier AS bigint), 'charge', 'meter', 3 + b.account_id % 7, 'm3', 55.12,
                     (3 + b.account_id % 7) * 5512, NULL::date, NULL),
                    ('maintenance', CAST(:manager AS bigint), 'benefit', 'benefit', b.area, 'm2', 32.40,
                     -round(b.area * 1620)::bigint, NULL::date, NULL),
                    ('cold_water', CAST(:supplier AS bigint), 'recalculation', 'recalculation', 2, 'm3', 55.12,
                     11024, DATE '2026-07-01', 'показания за июль переданы после закрытия периода')
                ) AS s(service, supplier_id, kind, method, quantity, unit, price, amount, corrects, reason)
                WHERE b.period = :period
                  AND (s.kind = 'charge' OR (s.kind = 'benefit' AND b.account_id % 20 = 0)
                       OR (s.kind = 'recalculation' AND b.account_id % 50 = 0))
                ORDER BY b.account_id
                """
            ),
            params,
        ).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name in ("billing_periods", "billed_accounts", "accrual_lines"):
            connection.execute(text(f"VACUUM (ANALYZE) {name}"))
    return int(lines)


def timed_iteration(docs: Iterable[BillDocument], phases: Phases, label: str) -> Iterator[BillDocument]:
    """``docs``, adding the time spent producing each to ``phases``."""
    iterator = iter(docs)
    while True:
        started = time.perf_counter()
        try:
            doc = next(iterator)
        except StopIteration:
            phases.add(label, time.perf_counter() - started)
            return
        phases.add(label, time.perf_counter() - started)
        yield doc


def stage_bills(engine: Engine, accounts: int, jobs: int, keep: Path | None, profile: Path | None) -> Outcome:
    started = time.perf_counter()
    lines = seed_bill_period(engine, accounts)
    print(
        f"  period {BILL_PERIOD} closed with {lines:,} lines for {accounts:,} accounts in "
        f"{time.perf_counter() - started:.1f} s (untimed)"
    )
    out_dir = keep or Path(tempfile.mkdtemp(prefix="zhkh-bench-bills-"))
    phases = Phases()
    start_mib = reset_peak_rss()
    with ChildrenRss() as workers:
        paths, seconds = in_transaction(
            engine,
            lambda session: render_bills_to_directory(
                timed_iteration(bill_documents(session, BILL_PERIOD), phases, "gathering (main process)"),
                out_dir,
                jobs=jobs,
            ),
            phases,
            profile,
        )
    peak = peak_rss_mib()
    if profile is not None:
        profile_rendering(engine, profile.with_name("bills-render.prof"))
    size = sum(path.stat().st_size for path in paths)
    if keep is None:
        shutil.rmtree(out_dir)
    note = (
        f"{len(paths):,} PDFs, {size / len(paths) / 1024:.0f} KiB each, jobs={jobs}; workers' peak PSS "
        f"{workers.peak_one:.0f} MiB each, {workers.peak_sum:.0f} MiB together"
    )
    print(f"  {note}")
    print(f"  phases: {phases}")
    return Outcome("bills", len(paths), "bills", seconds, peak, start_mib, note)


def profile_rendering(engine: Engine, path: Path, bills: int = 200) -> None:
    """The workers are not in the stage's profile: render ``bills`` bills in this process under
    cProfile to see where a bill's time goes."""
    with session_scope(engine) as session:
        docs = list(itertools.islice(bill_documents(session, BILL_PERIOD), bills))
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for doc in docs:
        render_bill(doc)
    profiler.disable()
    print(f"  {bills} bills rendered in this process in {time.perf_counter() - started:.1f} s")
    profiler.dump_stats(path)
    show_profile(path, 25)


# --- main --------------------------------------------------------------------------------------


def report(outcome: Outcome) -> None:
    verdict = "met" if outcome.met else "NOT met"
    print(
        f"{outcome.stage}: {outcome.items:,} {outcome.unit} in {outcome.seconds:.1f} s "
        f"({outcome.items / outcome.seconds:,.0f} {outcome.unit}/s), peak RSS {outcome.peak_mib:.0f} MiB "
        f"({outcome.start_mib:.0f} at the start); "
        f"target {outcome.target:.0f} s: {verdict}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--statement", type=int, default=100_000, help="payment orders in the bank statement")
    parser.add_argument("--bills", type=int, default=10_000, help="bills to render")
    parser.add_argument("--jobs", type=int, default=2, help="processes rendering bills")
    parser.add_argument(
        "--server", default=os.environ.get("ZHKH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--database", default="zhkh_bench_payments")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--skip-build", action="store_true", help="reuse the region of an earlier run")
    parser.add_argument(
        "--penalty-month",
        type=Period.parse,
        default=PENALTY_MONTH,
        help=f"the month the penalty stage charges (default {PENALTY_MONTH}, after the registry's payments;"
        " 2026-06 charges the month the registry paid in, so most debts are reduced during it)",
    )
    parser.add_argument("--keep-bills", type=Path, help="write the bills here and keep them")
    parser.add_argument(
        "--profile", type=Path, help="write a cProfile of each stage into this directory (times are then not figures)"
    )
    parser.add_argument(
        "--stages",
        type=lambda value: value.split(","),
        default=list(TARGETS),
        help="comma-separated, of allocate,penalties,statement,bills (default: all); a stage works on"
        " what the stages before it left (penalties on the debts the registry left unpaid)",
    )
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)

    def profile(stage: str) -> Path | None:
        return args.profile / f"{stage}.prof" if args.profile else None

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d}"
    )
    url = args.server.rsplit("/", 1)[0] + f"/{args.database}"
    if not args.skip_build:
        started = time.perf_counter()
        url = recreate_database(args.server, args.database)
        build(args.accounts, url, args.data)
        print(f"build: region of {args.accounts:,} accounts in {time.perf_counter() - started:.1f} s ({url})")
    engine = create_db_engine(url)
    upgrade(engine)
    with engine.connect() as connection:
        server = connection.scalar(text("SHOW server_version"))
    accounts = account_count(engine)
    if accounts != args.accounts:
        raise SystemExit(f"{url} has {accounts:,} accounts, not {args.accounts:,}: build it (without --skip-build)")
    started = time.perf_counter()
    postings, accrued = seed_books(engine)
    print(
        f"seed: {postings:,} receivables of {', '.join(map(str, DEBT_PERIODS))} ({format_rubles(accrued)} ₽) "
        f"in {time.perf_counter() - started:.1f} s, VACUUM ANALYZE included (PostgreSQL {server})",
        flush=True,
    )

    outcomes: list[Outcome] = []
    stages: list[tuple[str, str, Callable[[], Outcome]]] = [
        ("allocate", "import_agent_registry", lambda: stage_allocate(engine, profile("allocate"))),
        (
            "penalties",
            f"charge_penalties({args.penalty_month})",
            lambda: stage_penalties(engine, args.penalty_month, profile("penalties")),
        ),
        (
            "statement",
            "import_bank_statement",
            lambda: stage_statement(engine, args.statement, profile("statement")),
        ),
        (
            "bills",
            f"render_bills_to_directory(bill_documents({BILL_PERIOD}), jobs={args.jobs})",
            lambda: stage_bills(engine, args.bills, args.jobs, args.keep_bills, profile("bills")),
        ),
    ]
    for name, what, run in stages:
        if name not in args.stages:
            continue
        if outcomes:
            settle(engine)
        gc.collect()  # what an earlier stage left in reference cycles must not weigh on this one
        print(f"stage {name}: {what}", flush=True)
        outcomes.append(run())
        report(outcomes[-1])

    print(f"\nsummary ({args.accounts:,} accounts, PostgreSQL {server}):")
    print("| stage | items | wall time | rate | target | peak RSS (at the start) |")
    print("|---|---:|---:|---:|---|---:|")
    for o in outcomes:
        verdict = "met" if o.met else "**not met**"
        print(
            f"| {o.stage} | {o.items:,} {o.unit} | {o.seconds:.1f} s | {o.items / o.seconds:,.0f}/s "
            f"| ≤ {o.target:.0f} s: {verdict} | {o.peak_mib:,.0f} MiB ({o.start_mib:,.0f}) |"
        )


if __name__ == "__main__":
    main()
