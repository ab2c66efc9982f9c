"""Guided conversations in progress: one per member, its answers so far kept as JSON."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Dialog

# The step of a dialog that ended in a stored change: kept until it expires, so that a
# second press of its button is recognised, but no longer waiting for an answer.
DONE = "done"


def dialog_data(dialog: Dialog) -> dict[str, Any]:
    """Return what a dialog has collected so far."""
    data = json.loads(dialog.data or "{}")
    assert isinstance(data, dict)
    return data


async def dialog_of(session: AsyncSession, member_id: int) -> Dialog | None:
    """Return a member's dialog, expired or not, or None."""
    return await session.get(Dialog, member_id)


async def waiting_dialog(session: AsyncSession, member_id: int) -> bool:
    """Tell whether a member has a dialog that waits for a plain message (or just expired)."""
    found = await session.scalar(
        select(Dialog.member_id).where(Dialog.member_id == member_id, Dialog.step != DONE)
    )
    return found is not None


async def save_dialog(
    session: AsyncSession,
    member_id: int,
    kind: str,
    step: str,
    data: dict[str, Any],
    *,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> Dialog:
    """Store a member's dialog at a step, replacing any other dialog of theirs."""
    dialog = await session.get(Dialog, member_id)
    if dialog is None:
        dialog = Dialog(member_id=member_id)
        session.add(dialog)
    dialog.kind = kind
    dialog.step = step
    dialog.data = json.dumps(data, ensure_ascii=False)
    dialog.expires_at = expires_at
    dialog.updated_at = now
    await session.flush()
    return dialog


async def drop_dialog(session: AsyncSession, member_id: int) -> None:
    """End a member's dialog."""
    await session.execute(delete(Dialog).where(Dialog.member_id == member_id))


async def any_expired_dialogs(session: AsyncSession, now: dt.datetime) -> bool:
    """Tell whether some dialog has run out and can be removed."""
    return bool(await session.scalar(select(exists().where(Dialog.expires_at <= now))))


async def drop_expired_dialogs(session: AsyncSession, now: dt.datetime) -> int:
    """Remove the dialogs that have run out; return how many."""
    result = await session.execute(delete(Dialog).where(Dialog.expires_at <= now))
    return int(getattr(result, "rowcount", 0) or 0)
