"""Linking accounts: everything that points at the member who redeems a code moves over."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.links import LinkRefused, create_link_code, redeem_link_code
from storage.members import member_for
from storage.models import (
    Answer,
    Base,
    Endorsement,
    Identity,
    InviteCode,
    LinkCode,
    Member,
    Rsvp,
    Subscription,
    Tip,
    Topic,
)
from tests.helpers import NOW, add_meeting, add_partner, add_tip


async def two_accounts(session: AsyncSession) -> tuple[Member, Member]:
    target, _, _ = await member_for(session, "telegram", "4242", display_name="Anna")
    source, _, _ = await member_for(session, "matrix", "@anna:example.org", display_name="")
    return target, source


async def link(session: AsyncSession, target: Member, source: Member) -> Member:
    code = await create_link_code(session, target, NOW)
    merged = await redeem_link_code(session, code.code, source, NOW)
    assert isinstance(merged, Member)
    await session.commit()
    return merged


async def test_every_row_of_the_linked_account_moves_to_the_member(session: AsyncSession) -> None:
    target, source = await two_accounts(session)
    partner = await add_partner(session)
    tip = await add_tip(session, partner, "Druckluftleckagen beseitigt")
    meeting = await add_meeting(session, "2. Netzwerktreffen", NOW + dt.timedelta(days=3))
    session.add_all(
        [
            Rsvp(meeting_id=meeting.id, member_id=source.id, answer=Answer.MAYBE),
            Endorsement(tip_id=tip.id, member_id=source.id),
            Subscription(member_id=source.id, topic=Topic.TIPS),
            InviteCode(
                code="INV-1",
                partner_id=partner.id,
                created_by=source.id,
                used_by=source.id,
                used_at=NOW,
                expires_at=NOW + dt.timedelta(days=14),
            ),
            LinkCode(code="OLD-1", member_id=source.id, expires_at=NOW, used_at=None),
        ]
    )
    tip.shared_by = source.id
    source.language, source.partner_id = "en", partner.id
    await session.flush()

    merged = await link(session, target, source)

    assert merged.id == target.id
    assert (merged.display_name, merged.language, merged.partner_id) == ("Anna", "en", partner.id)
    assert (await session.scalars(select(Member.id))).all() == [target.id]
    assert set(await session.scalars(select(Identity.member_id))) == {target.id}
    assert (await session.execute(select(Rsvp.member_id, Rsvp.answer))).all() == [
        (target.id, Answer.MAYBE)
    ]
    assert (await session.scalars(select(Endorsement.member_id))).all() == [target.id]
    assert (await session.scalars(select(Subscription.topic))).all() == [Topic.TIPS]
    invite = (await session.execute(select(InviteCode.created_by, InviteCode.used_by))).one()
    assert tuple(invite) == (target.id, target.id)
    assert await session.scalar(select(Tip.shared_by)) == target.id
    assert set(await session.scalars(select(LinkCode.member_id))) == {target.id}
    # No row anywhere still points at the account that is gone.
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table is Member.__table__:
                left = select(func.count()).where(key.parent == source.id)
                assert await session.scalar(left) == 0, key.parent


async def test_where_both_accounts_chose_the_member_who_made_the_code_keeps_theirs(
    session: AsyncSession,
) -> None:
    target, source = await two_accounts(session)
    partner = await add_partner(session)
    tip = await add_tip(session, partner, "Wärmepumpe statt Gaskessel")
    meeting = await add_meeting(session, "2. Netzwerktreffen", NOW + dt.timedelta(days=3))
    target.language, source.language = "de", "en"
    for member, answer in ((target, Answer.YES), (source, Answer.NO)):
        session.add_all(
            [
                Rsvp(meeting_id=meeting.id, member_id=member.id, answer=answer),
                Endorsement(tip_id=tip.id, member_id=member.id),
                Subscription(member_id=member.id, topic=Topic.ANNOUNCEMENTS),
            ]
        )
    session.add(Subscription(member_id=source.id, topic=Topic.REMINDERS))
    await session.flush()

    merged = await link(session, target, source)

    assert merged.language == "de"
    assert (await session.execute(select(Rsvp.member_id, Rsvp.answer))).all() == [
        (target.id, Answer.YES)
    ]
    assert (await session.scalars(select(Endorsement.member_id))).all() == [target.id]
    topics = set(await session.scalars(select(Subscription.topic)))
    assert topics == {Topic.ANNOUNCEMENTS, Topic.REMINDERS}


async def test_a_code_cannot_link_an_account_to_itself(session: AsyncSession) -> None:
    target, _source = await two_accounts(session)
    code = await create_link_code(session, target, NOW)
    assert await redeem_link_code(session, code.code, target, NOW) is LinkRefused.SAME_MEMBER
