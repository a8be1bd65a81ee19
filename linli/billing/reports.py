"""Arrears aging, dunning lists, house statements and the reports computed from the ledger.

Aging is one aggregate over open bills (the partial index ``ix_bills_open``
holds exactly those), grouped at the level asked for; the money reports
(collection rate, income by fee item, cashier day) read journal lines only, so
they agree with the books by construction.
"""

from __future__ import annotations

import datetime as dt
import enum
import io
import uuid
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.auth.actor import Actor
from linli.billing.models import (
    Account,
    Bill,
    FeeItem,
    JournalEntry,
    JournalLine,
    Receipt,
)
from linli.estate import service as estate

SHANGHAI = ZoneInfo("Asia/Shanghai")

BUCKETS = ("0-30", "31-90", "91-180", "180+")


class AgingLevel(enum.StrEnum):
    COMMUNITY = "community"
    BUILDING = "building"
    HOUSE = "house"


@dataclass
class AgingRow:
    key: uuid.UUID
    community_id: uuid.UUID
    buckets: dict[str, int]
    label: str = ""

    @property
    def total(self) -> int:
        return sum(self.buckets.values())


async def arrears_aging(
    session: AsyncSession,
    actor: Actor,
    *,
    level: AgingLevel = AgingLevel.COMMUNITY,
    community_id: uuid.UUID | None = None,
    as_of: dt.date,
    limit: int = 200,
) -> list[AgingRow]:
    """Outstanding cents per aging bucket (days past due), largest arrears first."""
    key = {
        AgingLevel.COMMUNITY: Bill.community_id,
        AgingLevel.BUILDING: Bill.building_id,
        AgingLevel.HOUSE: Bill.house_id,
    }[level]
    days = literal(as_of) - Bill.due_on
    outstanding = Bill.amount_cents - Bill.settled_cents
    bucket_columns = [
        func.coalesce(func.sum(case((condition, outstanding), else_=0)), 0).label(name)
        for name, condition in (
            ("b0", days <= 30),
            ("b1", and_(days > 30, days <= 90)),
            ("b2", and_(days > 90, days <= 180)),
            ("b3", days > 180),
        )
    ]
    statement = (
        select(key, Bill.community_id, *bucket_columns)
        .where(
            Bill.settled_cents < Bill.amount_cents,
            Bill.due_on < as_of,
            estate.community_scope(actor, Bill.community_id),
        )
        .group_by(key, Bill.community_id)
        .order_by(func.sum(outstanding).desc())
        .limit(limit)
    )
    if community_id is not None:
        statement = statement.where(Bill.community_id == community_id)
    # One hash aggregate over every open bill: give it memory so it does not spill to disk.
    await session.execute(text("SET LOCAL work_mem = '64MB'"))
    rows = (await session.execute(statement)).all()
    return [
        AgingRow(row[0], row[1], dict(zip(BUCKETS, (int(v) for v in row[2:]), strict=True)))
        for row in rows
    ]


async def label_rows(
    session: AsyncSession, actor: Actor, rows: list[AgingRow], level: AgingLevel
) -> None:
    """Human labels for a page of aging rows (community name, building no, house ref)."""
    if level is AgingLevel.HOUSE:  # an export may hold 10,000 houses: one statement
        refs = await estate.house_refs(session, actor, house_ids=[row.key for row in rows])
        for row in rows:
            row.label = refs.get(row.key, "")
        return
    for row in rows:
        if level is AgingLevel.COMMUNITY:
            row.label = (await estate.get_community(session, actor, community_id=row.key)).name
        else:
            row.label = (await estate.get_building(session, actor, building_id=row.key)).building_no


@dataclass
class DunningRow:
    house_id: uuid.UUID
    label: str
    owed_cents: int
    oldest_due: dt.date
    bills: int


async def dunning_list(
    session: AsyncSession,
    actor: Actor,
    *,
    community_id: uuid.UUID,
    min_days: int = 30,
    as_of: dt.date,
    limit: int = 200,
) -> list[DunningRow]:
    """Houses with bills overdue by at least ``min_days`` (催缴名单), most owed first."""
    await estate.get_community(session, actor, community_id=community_id)
    rows = (
        await session.execute(
            select(
                Bill.house_id,
                func.sum(Bill.amount_cents - Bill.settled_cents),
                func.min(Bill.due_on),
                func.count(),
            )
            .where(
                Bill.community_id == community_id,
                Bill.settled_cents < Bill.amount_cents,
                Bill.due_on <= as_of - dt.timedelta(days=min_days),
            )
            .group_by(Bill.house_id)
            .order_by(func.sum(Bill.amount_cents - Bill.settled_cents).desc())
            .limit(limit)
        )
    ).all()
    from linli.billing.service import house_label

    return [
        DunningRow(house_id, await house_label(session, actor, house_id), int(owed), oldest, int(n))
        for house_id, owed, oldest, n in rows
    ]


@dataclass
class StatementLine:
    """One journal entry as the house sees it: what it charged, paid, credited, and what it
    moved in and out of the prepaid balance (positive = into prepaid)."""

    day: dt.date
    text: str
    charged: int
    paid: int
    balance: int = 0
    credited: int = 0
    late_fee: int = 0
    prepaid: int = 0
    kind: str = ""


@dataclass
class Statement:
    """A house's statement (对账单) for ``[since, until)``: receivable opening and closing
    balance (what the house owes), the period's movements, and the prepaid balance."""

    house_id: uuid.UUID
    label: str
    lines: list[StatementLine] = field(default_factory=list)
    since: dt.date | None = None
    until: dt.date | None = None
    opening: int = 0
    prepaid_opening: int = 0

    @property
    def balance(self) -> int:
        return self.opening + sum(
            line.charged + line.late_fee - line.paid - line.credited for line in self.lines
        )

    @property
    def charges(self) -> int:
        return sum(line.charged for line in self.lines)

    @property
    def payments(self) -> int:
        return sum(line.paid for line in self.lines)

    @property
    def credits(self) -> int:
        return sum(line.credited for line in self.lines)

    @property
    def late_fees(self) -> int:
        return sum(line.late_fee for line in self.lines)

    @property
    def prepaid_movement(self) -> int:
        return sum(line.prepaid for line in self.lines)

    @property
    def prepaid_closing(self) -> int:
        return self.prepaid_opening + self.prepaid_movement


_STATEMENT_TEXT = {
    "billing_run": "账单",
    "billing_run_revert": "账单撤销",
    "charge": "收费",
    "late_fee": "滞纳金",
    "payment": "收据",
    "payment_void": "作废收据",
    "credit_note": "减免",
    "online_refund": "退款",
}

# The house's part of every entry. Entries of single houses carry the house on their lines;
# a billing run posts one receivable debit per chunk of houses (a million lines less per
# run), so its house detail is the subledger behind it: the house's bills of that run,
# whose sum is the run's debit by construction (tests/billing/test_statement.py checks it).
_STATEMENT_SQL = text(
    """
WITH own AS (
  SELECT e.id, e.kind, e.posted_at, e.source_id,
    coalesce(sum(l.debit_cents - l.credit_cents)
      FILTER (WHERE l.account = 'receivable'), 0) AS receivable,
    coalesce(sum(l.credit_cents - l.debit_cents)
      FILTER (WHERE l.account = 'prepaid'), 0) AS prepaid,
    coalesce(sum(l.debit_cents - l.credit_cents)
      FILTER (WHERE l.account = 'discount'), 0) AS discount
  FROM journal_lines l
  JOIN journal_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id
  WHERE l.house_id = :house AND l.account IN ('receivable', 'prepaid', 'discount')
  GROUP BY e.id, e.kind, e.posted_at, e.source_id
), runs AS (
  SELECT b.run_id AS source_id, sum(b.amount_cents) AS receivable,
    (SELECT min(e.posted_at) FROM journal_entries e
      WHERE e.source_id = b.run_id AND e.kind = 'billing_run') AS posted_at
  FROM bills b
  WHERE b.house_id = :house AND b.run_id IS NOT NULL
  GROUP BY b.run_id
)
SELECT kind, posted_at, source_id, receivable, prepaid, discount FROM own
UNION ALL
SELECT 'billing_run', posted_at, source_id, receivable, 0, 0 FROM runs
WHERE posted_at IS NOT NULL
ORDER BY posted_at, kind
"""
)


async def house_statement(
    session: AsyncSession,
    actor: Actor,
    *,
    house_id: uuid.UUID,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> Statement:
    """A house's statement (对账单) computed from the journal: one line per entry that
    touched the house's receivable or prepaid money, opening balances from the entries
    before ``since`` (days in Asia/Shanghai), closing balances from the lines."""
    from linli.billing.service import house_label

    house = await estate.get_house(session, actor, house_id=house_id, include_archived=True)
    rows = (await session.execute(_STATEMENT_SQL, {"house": house.id})).all()
    numbers = dict(
        (
            await session.execute(
                select(Receipt.id, Receipt.receipt_no).where(
                    Receipt.id.in_([r.source_id for r in rows if r.kind.startswith("payment")])
                )
            )
        ).all()
    )
    statement = Statement(house.id, await house_label(session, actor, house.id), since=since)
    statement.until = until
    balance: int | None = None
    for row in rows:
        day = row.posted_at.astimezone(SHANGHAI).date()
        if until is not None and day >= until:
            break
        receivable, prepaid, discount = int(row.receivable), int(row.prepaid), int(row.discount)
        line = StatementLine(day, _STATEMENT_TEXT.get(row.kind, row.kind), 0, 0, kind=row.kind)
        if row.kind in ("billing_run", "billing_run_revert", "charge"):
            line.charged = receivable
        elif row.kind == "late_fee":
            line.late_fee = receivable
        elif row.kind == "credit_note":
            line.credited = -receivable
        else:  # payments, voids, refunds: discounts count as credits, the rest as paid
            line.credited = discount
            line.paid = -receivable - discount
        line.prepaid = prepaid
        number = numbers.get(row.source_id)
        if number is not None:
            line.text = f"{line.text} No.{number:08d}"
        if since is not None and day < since:
            statement.opening += receivable
            statement.prepaid_opening += prepaid
            continue
        if not (receivable or prepaid):
            continue
        if balance is None:
            balance = statement.opening
        balance += receivable
        line.balance = balance
        statement.lines.append(line)
    return statement


# --- reports from the ledger ---------------------------------------------------------------


@dataclass
class CollectionRow:
    community_id: uuid.UUID
    month: dt.date
    charged: int
    collected: int

    @property
    def rate(self) -> float:
        return self.collected / self.charged if self.charged else 0.0


def _month_of(column: Any) -> Any:
    return func.date_trunc("month", func.timezone("Asia/Shanghai", column))


_CHARGE_KINDS = ("billing_run", "billing_run_revert", "charge", "late_fee", "credit_note")
_COLLECT_KINDS = ("payment", "payment_void")


async def collection_rate(
    session: AsyncSession, actor: Actor, *, since: dt.date, until: dt.date
) -> list[CollectionRow]:
    """Per community and month: receivable charged (net of reverts and credit notes) and
    collected (net of voids) — both read from receivable lines of the journal."""
    month = _month_of(JournalEntry.posted_at)
    receivable = and_(
        JournalLine.account == Account.RECEIVABLE.value,
    )
    charged = func.sum(
        case(
            (
                JournalEntry.kind.in_(_CHARGE_KINDS),
                JournalLine.debit_cents - JournalLine.credit_cents,
            ),
            else_=0,
        )
    )
    collected = func.sum(
        case(
            (
                JournalEntry.kind.in_(_COLLECT_KINDS),
                JournalLine.credit_cents - JournalLine.debit_cents,
            ),
            else_=0,
        )
    )
    rows = (
        await session.execute(
            select(JournalLine.community_id, month, charged, collected)
            .join(
                JournalEntry,
                and_(
                    JournalEntry.tenant_id == JournalLine.tenant_id,
                    JournalEntry.id == JournalLine.entry_id,
                ),
            )
            .where(
                receivable,
                JournalEntry.posted_at >= since,
                JournalEntry.posted_at < until,
                estate.community_scope(actor, JournalLine.community_id),
            )
            .group_by(JournalLine.community_id, month)
            .order_by(JournalLine.community_id, month)
        )
    ).all()
    return [CollectionRow(c, m.date(), int(ch), int(co)) for c, m, ch, co in rows]


@dataclass
class IncomeRow:
    fee_item_id: uuid.UUID | None
    name: str
    cents: int


async def income_by_fee_item(
    session: AsyncSession,
    actor: Actor,
    *,
    since: dt.date,
    until: dt.date,
    community_id: uuid.UUID | None = None,
) -> list[IncomeRow]:
    """Revenue per fee item (credits − debits), late-fee income and discounts as own rows."""
    statement = (
        select(
            JournalLine.account,
            JournalLine.fee_item_id,
            func.sum(JournalLine.credit_cents - JournalLine.debit_cents),
        )
        .join(
            JournalEntry,
            and_(
                JournalEntry.tenant_id == JournalLine.tenant_id,
                JournalEntry.id == JournalLine.entry_id,
            ),
        )
        .where(
            JournalLine.account.in_(
                [Account.REVENUE.value, Account.LATE_FEE_INCOME.value, Account.DISCOUNT.value]
            ),
            JournalEntry.posted_at >= since,
            JournalEntry.posted_at < until,
            estate.community_scope(actor, JournalLine.community_id),
        )
        .group_by(JournalLine.account, JournalLine.fee_item_id)
    )
    if community_id is not None:
        statement = statement.where(JournalLine.community_id == community_id)
    rows = (await session.execute(statement)).all()
    names = {
        i.id: i.name
        for i in (
            await session.scalars(
                select(FeeItem).where(FeeItem.id.in_([r[1] for r in rows if r[1]]))
            )
        ).all()
    }
    special = {Account.LATE_FEE_INCOME.value: "滞纳金", Account.DISCOUNT.value: "优惠折扣"}
    result = [
        IncomeRow(item, names.get(item, "") if item else special.get(account, account), int(cents))
        for account, item, cents in rows
    ]
    return sorted(result, key=lambda r: -r.cents)


@dataclass
class CashierDayRow:
    cashier_id: uuid.UUID | None
    method: str
    receipts: int
    cents: int


_MONEY_ACCOUNTS = {
    Account.CASH.value: "cash",
    Account.CARD_CLEARING.value: "card",
    Account.BANK.value: "transfer",
    Account.SCAN_CLEARING.value: "scan",
    Account.PREPAID.value: "prepaid",
}


async def cashier_day(
    session: AsyncSession, actor: Actor, *, day: dt.date, community_id: uuid.UUID | None = None
) -> list[CashierDayRow]:
    """Per cashier and payment method, the money taken on ``day`` (收银日报), from the
    journal: payment entries net of voids, by the account the money sits in."""
    local_day = func.date(func.timezone("Asia/Shanghai", JournalEntry.posted_at))
    prepaid = JournalLine.account == Account.PREPAID.value
    net = func.sum(
        case(
            # Prepaid as a way of paying: what payments took out of balances, less voids.
            (and_(prepaid, JournalEntry.kind == "payment"), JournalLine.debit_cents),
            (and_(prepaid, JournalEntry.kind == "payment_void"), -JournalLine.credit_cents),
            else_=JournalLine.debit_cents - JournalLine.credit_cents,
        )
    )
    receipts = func.count(func.distinct(JournalEntry.source_id)).filter(
        JournalEntry.kind == "payment"
    ) - func.count(func.distinct(JournalEntry.source_id)).filter(
        JournalEntry.kind == "payment_void"
    )
    statement = (
        select(JournalEntry.actor_id, JournalLine.account, receipts, net)
        .join(
            JournalEntry,
            and_(
                JournalEntry.tenant_id == JournalLine.tenant_id,
                JournalEntry.id == JournalLine.entry_id,
            ),
        )
        .where(
            JournalEntry.kind.in_(("payment", "payment_void")),
            JournalLine.account.in_(list(_MONEY_ACCOUNTS)),
            local_day == day,
            estate.community_scope(actor, JournalLine.community_id),
        )
        .group_by(JournalEntry.actor_id, JournalLine.account)
        .order_by(JournalEntry.actor_id, JournalLine.account)
    )
    if community_id is not None:
        statement = statement.where(JournalLine.community_id == community_id)
    return [
        CashierDayRow(cashier, _MONEY_ACCOUNTS[account], int(n), int(cents))
        for cashier, account, n, cents in (await session.execute(statement)).all()
        if cents
    ]


async def trial_balance(
    session: AsyncSession, actor: Actor, *, community_id: uuid.UUID | None = None
) -> dict[str, tuple[int, int]]:
    """Debits and credits per account; the two totals are equal by construction."""
    statement = select(
        JournalLine.account, func.sum(JournalLine.debit_cents), func.sum(JournalLine.credit_cents)
    ).where(estate.community_scope(actor, JournalLine.community_id))
    if community_id is not None:
        statement = statement.where(JournalLine.community_id == community_id)
    rows = (await session.execute(statement.group_by(JournalLine.account))).all()
    return {account: (int(d), int(c)) for account, d, c in rows}


def to_xlsx(title: str, header: list[str], rows: list[list[Any]]) -> bytes:
    """A one-sheet workbook (openpyxl, write-only: constant memory)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def bar_chart_svg(values: list[tuple[str, float]], *, width: int = 560, unit: str = "") -> str:
    """A horizontal bar chart as inline SVG (server-rendered, no script)."""
    from html import escape

    bar_h, gap, label_w = 18, 6, 140
    top = max((v for _, v in values), default=0) or 1
    height = len(values) * (bar_h + gap) + gap
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" class="chart">'
    ]
    for index, (label, value) in enumerate(values):
        y = gap + index * (bar_h + gap)
        w = int((width - label_w - 90) * value / top)
        parts.append(
            f'<text x="0" y="{y + 13}" font-size="12">{escape(label[:20])}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(w, 1)}" height="{bar_h}" fill="#2f6fdb"/>'
            f'<text x="{label_w + w + 4}" y="{y + 13}" font-size="12">'
            f"{escape(f'{value:,.2f}{unit}')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
