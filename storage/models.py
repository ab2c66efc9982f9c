"""The database tables, as SQLAlchemy 2 declarative models."""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
import uuid
from typing import Any, ClassVar

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    validates,
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware datetime stored in UTC; SQLite keeps no offset, so it is restored."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store times with a time zone")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def utcnow() -> dt.datetime:
    """Return the current moment in UTC."""
    return dt.datetime.now(dt.UTC)


def new_meeting_uid() -> str:
    """Return a calendar UID no other meeting anywhere has."""
    return f"{uuid.uuid4()}@klimabot"


class Base(DeclarativeBase):
    """The declarative base with stable constraint names for migrations."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime}


class Category(enum.StrEnum):
    """What a tip is about."""

    ENERGY = "energy"
    HEAT = "heat"
    MOBILITY = "mobility"
    PROCUREMENT = "procurement"
    BUILDINGS = "buildings"
    PROCESSES = "processes"
    OTHER = "other"


class Answer(enum.StrEnum):
    """A member's answer to a meeting invitation."""

    YES = "yes"
    NO = "no"
    MAYBE = "maybe"


class DeliveryState(enum.StrEnum):
    """Where a pushed message stands; every state but pending is final."""

    PENDING = "pending"
    DELIVERED = "delivered"
    UNREACHABLE = "unreachable"  # blocked the bot, left, deactivated
    FAILED = "failed"  # the platform refused it; the error says why
    EXPIRED = "expired"  # too late to be of use
    CANCELLED = "cancelled"


class NoticeKind(enum.StrEnum):
    """Why members who answered a meeting are told about it."""

    CHANGED = "changed"
    CANCELLED = "cancelled"
    # A place became free and the first on the waiting list has it now.
    MOVED_UP = "moved_up"


class Topic(enum.StrEnum):
    """What a member can subscribe to."""

    ANNOUNCEMENTS = "announcements"
    REMINDERS = "reminders"
    TIPS = "tips"


def _choice(enum_class: type[enum.StrEnum], name: str) -> Enum:
    """Store an enum by its value, with a CHECK constraint listing the allowed values."""
    return Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def fold_name(name: str) -> str:
    """Return the form of a name in which "IHK Düsseldorf" and "ihk düsseldorf" are equal."""
    return unicodedata.normalize("NFKC", name).casefold()


# The operator's own short name for an entry of the import file, kept across renames.
ImportKey = String(100)


class Partner(Base):
    """An organisation that signed the climate pact."""

    __tablename__ = "partners"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    # Two partners never differ only in case; set whenever the name is.
    name_folded: Mapped[str] = mapped_column(String(200), index=True, unique=True)
    import_key: Mapped[str | None] = mapped_column(ImportKey, index=True, unique=True)
    sector: Mapped[str] = mapped_column(String(200), default="")
    joined: Mapped[dt.date]
    website: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @validates("name")
    def _fold(self, _key: str, name: str) -> str:
        self.name_folded = fold_name(name)
        return name


class Member(Base):
    """A person who talks to the bot, on one or more platforms."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    partner_id: Mapped[int | None] = mapped_column(
        ForeignKey("partners.id", ondelete="SET NULL"), index=True
    )
    # Minutes before a meeting to remind this member, e.g. "1440 120"; "" is none at all,
    # NULL the network's default.
    reminder_offsets: Mapped[str | None] = mapped_column(String(64))
    # The secret in the address of the member's private calendar feed; NULL until asked for.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    partner: Mapped[Partner | None] = relationship(lazy="raise")
    identities: Mapped[list[Identity]] = relationship(
        back_populates="member", lazy="raise", cascade="all, delete-orphan"
    )


class Identity(Base):
    """A member's account on one platform, keyed by the platform's stable user id."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("platform", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(255))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    # Set when the platform refused delivery (blocked, deactivated); cleared on contact.
    unreachable_since: Mapped[dt.datetime | None]
    # The private chat where the person last wrote to the bot, and when: where pushes go.
    chat_id: Mapped[str | None] = mapped_column(String(255))
    last_seen_at: Mapped[dt.datetime | None]

    member: Mapped[Member] = relationship(back_populates="identities", lazy="raise")


class InviteCode(Base):
    """A one-time code that links whoever redeems it to a partner organisation."""

    __tablename__ = "invite_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
    used_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    used_at: Mapped[dt.datetime | None]

    partner: Mapped[Partner] = relationship(lazy="raise")


class LinkCode(Base):
    """A one-time code that joins a member's account on another platform to them."""

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class Meeting(Base):
    """A network meeting, in person or online."""

    __tablename__ = "meetings"
    __table_args__ = (
        UniqueConstraint("title", "starts_at"),
        UniqueConstraint("series_id", "recurrence_id"),
        Index("ix_meetings_starts_at", "starts_at"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    location: Mapped[str | None] = mapped_column(String(300))
    online_url: Mapped[str | None] = mapped_column(String(500))
    agenda: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[dt.datetime | None]
    import_key: Mapped[str | None] = mapped_column(ImportKey, index=True, unique=True)
    # The calendar UID: random, so that it stays unique across networks and database resets.
    uid: Mapped[str] = mapped_column(String(80), unique=True, default=new_meeting_uid)
    # Raised with every change calendar apps must take over (RFC 5545 SEQUENCE).
    sequence: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # How many may attend; a "yes" beyond it is a place on the waiting list. None: no limit.
    capacity: Mapped[int | None]
    # An occurrence of a series, and the start the series' rule gave it (RFC 5545
    # RECURRENCE-ID): a moved occurrence keeps it, so it is never made a second time.
    series_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_series.id", ondelete="SET NULL"), index=True
    )
    recurrence_id: Mapped[dt.datetime | None]

    # What calendar apps must take over from a newer file: a change to any of these raises
    # the sequence (an agenda or a capacity is no revision in RFC 5546's sense).
    REVISED_BY: ClassVar[tuple[str, ...]] = (
        "title",
        "starts_at",
        "ends_at",
        "location",
        "online_url",
        "cancelled_at",
    )


@event.listens_for(Session, "before_flush")
def _raise_sequences(session: Session, _context: Any, _instances: Any) -> None:
    """Raise the sequence of each meeting whose calendar fields this flush changes."""
    for meeting in session.dirty:
        if not isinstance(meeting, Meeting):
            continue
        attributes = inspect(meeting).attrs
        if any(attributes[name].history.has_changes() for name in Meeting.REVISED_BY):
            meeting.sequence += 1


class MeetingSeries(Base):
    """Meetings that repeat by a rule; each occurrence is a meeting of its own."""

    __tablename__ = "meeting_series"
    __table_args__ = (
        UniqueConstraint("title", "starts_at"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    # The first occurrence: its start is the rule's DTSTART, read as network-local time.
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime | None]
    # An RFC 5545 RRULE value such as FREQ=MONTHLY;INTERVAL=3;BYDAY=+2WE.
    rule: Mapped[str] = mapped_column(String(500))
    location: Mapped[str | None] = mapped_column(String(300))
    online_url: Mapped[str | None] = mapped_column(String(500))
    agenda: Mapped[str | None] = mapped_column(Text)
    capacity: Mapped[int | None]
    import_key: Mapped[str | None] = mapped_column(ImportKey, index=True, unique=True)
    # Occurrences exist as meetings up to here; later ones are made as time passes.
    materialised_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class MeetingNotice(Base):
    """What changed about a meeting, told to those who answered yes or maybe."""

    __tablename__ = "meeting_notices"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[NoticeKind] = mapped_column(_choice(NoticeKind, "notice_kind"))
    # Each changed field with its old and new value, as JSON: {"starts_at": [old, new]};
    # times in ISO 8601 with their offset.
    changes: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Dialog(Base):
    """A guided conversation in progress, such as /newmeeting: one per member at a time."""

    __tablename__ = "dialogs"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[str] = mapped_column(String(32))
    # What was answered so far, as JSON.
    data: Mapped[str] = mapped_column(Text, default="{}")
    expires_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Rsvp(Base):
    """A member's answer for one meeting."""

    __tablename__ = "rsvps"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    answer: Mapped[Answer] = mapped_column(_choice(Answer, "answer"))
    # A "yes" beyond the meeting's capacity waits from this moment; the earliest moves up
    # first when a place becomes free. None: a place (or no "yes" at all).
    waiting_since: Mapped[dt.datetime | None]
    answered_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Tip(Base):
    """A savings experience a partner shared with the network."""

    __tablename__ = "tips"
    __table_args__ = (
        UniqueConstraint("partner_id", "title"),
        CheckConstraint("co2_t_per_year IS NULL OR co2_t_per_year >= 0", name="co2_positive"),
        # Covering indexes for browsing and counting visible tips without reading their text.
        Index("ix_tips_rank", "hidden_at", "endorsement_count"),
        Index("ix_tips_category_rank", "hidden_at", "category", "endorsement_count"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[Category] = mapped_column(_choice(Category, "category"))
    text: Mapped[str] = mapped_column(Text)
    co2_t_per_year: Mapped[float | None]
    endorsement_count: Mapped[int] = mapped_column(default=0, server_default="0")
    shared_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    hidden_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    import_key: Mapped[str | None] = mapped_column(ImportKey, index=True, unique=True)

    partner: Mapped[Partner] = relationship(lazy="raise")


class Endorsement(Base):
    """A member's "worked for us too" on a tip."""

    __tablename__ = "endorsements"

    tip_id: Mapped[int] = mapped_column(
        ForeignKey("tips.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Subscription(Base):
    """A member wants pushed messages of one topic."""

    __tablename__ = "subscriptions"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[Topic] = mapped_column(_choice(Topic, "topic"), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Announcement(Base):
    """A coordinator's message to every member subscribed to announcements."""

    __tablename__ = "announcements"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Safe HTML, escaped where the coordinator's text was read.
    text: Mapped[str] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    # Where the coordinator watches the progress: the message that is edited in place.
    progress_platform: Mapped[str | None] = mapped_column(String(16))
    progress_chat: Mapped[str | None] = mapped_column(String(255))
    progress_message: Mapped[str | None] = mapped_column(String(255))
    progress_shown_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]


class Delivery(Base):
    """One pushed message to one member: the outbox row the delivery worker sends."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("announcement_id", "member_id"),
        UniqueConstraint("notice_id", "member_id"),
        # One reminder per member, meeting and offset for the start it was planned for.
        UniqueConstraint("meeting_id", "member_id", "offset_minutes", "planned_start"),
        Index("ix_deliveries_due", "state", "platform", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    announcement_id: Mapped[int | None] = mapped_column(
        ForeignKey("announcements.id", ondelete="CASCADE"), index=True
    )
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("meetings.id", ondelete="CASCADE"), index=True
    )
    notice_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_notices.id", ondelete="CASCADE"), index=True
    )
    # A reminder: how long before the start, and the start it was planned for.
    offset_minutes: Mapped[int | None]
    planned_start: Mapped[dt.datetime | None]
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), index=True
    )
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(255))
    state: Mapped[DeliveryState] = mapped_column(
        _choice(DeliveryState, "delivery_state"), default=DeliveryState.PENDING
    )
    due_at: Mapped[dt.datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    # A worker that took the row; another may take it once the lease has run out.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class PlatformPause(Base):
    """A platform told the bot to send nothing until a moment (Telegram's retry_after)."""

    __tablename__ = "platform_pauses"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    until: Mapped[dt.datetime]
