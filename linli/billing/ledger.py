"""The double-entry journal (总账): every money movement of billing posts one balanced entry.

:func:`post` refuses an unbalanced entry before it reaches the database, and a
deferred constraint trigger (migration 0004) checks every entry again at commit,
so code that writes lines some other way cannot unbalance the books either.
The journal is append-only: corrections are reversing entries (:func:`reverse`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from linli.billing.models import Account, JournalEntry, JournalLine
from linli.core.ids import new_id


class UnbalancedEntry(ValueError):
    """A programming error: an entry whose debits and credits differ."""


@dataclass(frozen=True)
class Line:
    account: Account
    debit: int = 0
    credit: int = 0
    fee_item_id: uuid.UUID | None = None
    house_id: uuid.UUID | None = None


def debit(
    account: Account,
    cents: int,
    *,
    fee_item_id: uuid.UUID | None = None,
    house_id: uuid.UUID | None = None,
) -> Line:
    return Line(account, debit=cents, fee_item_id=fee_item_id, house_id=house_id)


def credit(
    account: Account,
    cents: int,
    *,
    fee_item_id: uuid.UUID | None = None,
    house_id: uuid.UUID | None = None,
) -> Line:
    return Line(account, credit=cents, fee_item_id=fee_item_id, house_id=house_id)


def check_balanced(lines: Sequence[Line]) -> None:
    if any(line.debit < 0 or line.credit < 0 for line in lines):
        raise UnbalancedEntry("negative amount on a journal line")
    debits = sum(line.debit for line in lines)
    credits = sum(line.credit for line in lines)
    if debits != credits:
        raise UnbalancedEntry(f"debits {debits} != credits {credits}")


async def post(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    community_id: uuid.UUID,
    kind: str,
    lines: Iterable[Line],
    source_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    memo: str = "",
) -> uuid.UUID | None:
    """Post one entry; zero lines are dropped, and an entry with nothing left is not posted."""
    kept = [line for line in lines if line.debit or line.credit]
    check_balanced(kept)
    if not kept:
        return None
    entry_id = new_id()
    # Entry and lines in one round trip: the hot path (a counter payment) posts one or two.
    await session.execute(
        text(
            "WITH entry AS (INSERT INTO journal_entries"
            " (tenant_id, id, community_id, kind, source_id, actor_id, memo, posted_at, created_at)"
            " VALUES (:tenant, :entry, :community, :kind, :source, :actor, :memo, now(), now())"
            " RETURNING tenant_id, id, community_id)"
            " INSERT INTO journal_lines (tenant_id, id, entry_id, community_id, account,"
            " fee_item_id, house_id, debit_cents, credit_cents, created_at)"
            " SELECT entry.tenant_id, l.id, entry.id, entry.community_id, l.account, l.fee_item,"
            " l.house, l.debit, l.credit, now() FROM entry,"
            " unnest(CAST(:ids AS uuid[]), CAST(:accounts AS varchar[]),"
            " CAST(:fee_items AS uuid[]), CAST(:houses AS uuid[]), CAST(:debits AS bigint[]),"
            " CAST(:credits AS bigint[])) AS l(id, account, fee_item, house, debit, credit)"
        ),
        {
            "tenant": tenant_id,
            "entry": entry_id,
            "community": community_id,
            "kind": kind,
            "source": source_id,
            "actor": actor_id,
            "memo": memo[:200],
            "ids": [new_id() for _ in kept],
            "accounts": [line.account.value for line in kept],
            "fee_items": [line.fee_item_id for line in kept],
            "houses": [line.house_id for line in kept],
            "debits": [line.debit for line in kept],
            "credits": [line.credit for line in kept],
        },
    )
    return entry_id


ENTRIES_CTE = (
    "j_entries AS (INSERT INTO journal_entries (tenant_id, id, community_id, kind,"
    " source_id, actor_id, memo, posted_at, created_at)"
    " SELECT :tenant, x.id, :j_community, x.kind, :j_source, :j_actor, x.memo, now(), now()"
    " FROM unnest(CAST(:j_ids AS uuid[]), CAST(:j_kinds AS varchar[]),"
    " CAST(:j_memos AS varchar[])) AS x(id, kind, memo)),"
    " j_lines AS (INSERT INTO journal_lines (tenant_id, id, entry_id, community_id, account,"
    " fee_item_id, house_id, debit_cents, credit_cents, created_at)"
    " SELECT :tenant, l.id, l.entry, :j_community, l.account, l.fee_item, l.house, l.debit,"
    " l.credit, now() FROM unnest(CAST(:j_line_ids AS uuid[]), CAST(:j_entries AS uuid[]),"
    " CAST(:j_accounts AS varchar[]), CAST(:j_fee_items AS uuid[]),"
    " CAST(:j_houses AS uuid[]), CAST(:j_debits AS bigint[]), CAST(:j_credits AS bigint[]))"
    " AS l(id, entry, account, fee_item, house, debit, credit))"
)


@dataclass(frozen=True)
class Entry:
    """An entry to post inside a larger statement (see :func:`entries_cte`)."""

    kind: str
    lines: Sequence[Line]
    memo: str = ""


def entries_params(
    entries: Sequence[Entry],
    *,
    community_id: uuid.UUID,
    source_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
) -> dict[str, Any]:
    """The parameters of :data:`ENTRIES_CTE` for ``entries``: the ``WITH`` items that insert
    entries and their lines inside a caller's own statement (the counter's hot path: one
    round trip per payment). Each entry is checked like :func:`post`; empty entries are
    dropped. The text uses the caller's ``:tenant`` parameter; these all start ``j_``."""
    ids: list[uuid.UUID] = []
    kinds: list[str] = []
    memos: list[str] = []
    lines: list[tuple[uuid.UUID, Line]] = []
    for entry in entries:
        kept = [line for line in entry.lines if line.debit or line.credit]
        check_balanced(kept)
        if not kept:
            continue
        entry_id = new_id()
        ids.append(entry_id)
        kinds.append(entry.kind)
        memos.append(entry.memo[:200])
        lines.extend((entry_id, line) for line in kept)
    params: dict[str, Any] = {
        "j_community": community_id,
        "j_source": source_id,
        "j_actor": actor_id,
        "j_ids": ids,
        "j_kinds": kinds,
        "j_memos": memos,
        "j_line_ids": [new_id() for _ in lines],
        "j_entries": [entry_id for entry_id, _ in lines],
        "j_accounts": [line.account.value for _, line in lines],
        "j_fee_items": [line.fee_item_id for _, line in lines],
        "j_houses": [line.house_id for _, line in lines],
        "j_debits": [line.debit for _, line in lines],
        "j_credits": [line.credit for _, line in lines],
    }
    return params


async def reverse(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    source_id: uuid.UUID,
    kind: str,
    reversal_kind: str,
    actor_id: uuid.UUID | None,
    memo: str = "",
) -> int:
    """Post the mirror image of every ``kind`` entry of ``source_id``; returns how many."""
    entries = (
        await session.execute(
            select(JournalEntry.id, JournalEntry.community_id).where(
                JournalEntry.source_id == source_id, JournalEntry.kind == kind
            )
        )
    ).all()
    for entry_id, community_id in entries:
        rows = (
            await session.execute(select(JournalLine).where(JournalLine.entry_id == entry_id))
        ).scalars()
        mirrored = [
            Line(
                Account(row.account),
                debit=row.credit_cents,
                credit=row.debit_cents,
                fee_item_id=row.fee_item_id,
                house_id=row.house_id,
            )
            for row in rows
        ]
        await post(
            session,
            tenant_id=tenant_id,
            community_id=community_id,
            kind=reversal_kind,
            lines=mirrored,
            source_id=source_id,
            actor_id=actor_id,
            memo=memo,
        )
    return len(entries)
