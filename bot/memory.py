"""What dispatch remembers between requests: who people are, and replies that are the same for all.

Both are answers the database gave before, kept with the stamp of the tables they came from
(:class:`storage.changes.Changes`): an entry counts only while none of those tables has
changed since, and a reply only until its lifetime ends. A miss costs nothing but the usual
way through the database, which fills the entry again.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.core import Platform, Reply, Role
from storage.changes import Changes, Stamp

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PEOPLE_TABLES = ("members", "identities")
# A reply served from memory is at most this old, even if nothing seems to have changed.
MAX_AGE = dt.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Person:
    """A member as dispatch needs them to answer from memory."""

    member_id: int
    display_name: str
    language: str | None
    partner_id: int | None


@dataclass(frozen=True, slots=True)
class ReplyKey:
    """What a reply that is the same for all depends on besides the data."""

    command: str
    args: str
    language: str
    role: Role
    via_button: bool
    # Set for a reply that also shows the member's own rows (see Router.command).
    member_id: int | None = None


class _Entries(Generic[K, V]):
    """A bounded map of values with their stamps and end times, least recently used out first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[K, tuple[V, Stamp, dt.datetime | None]] = OrderedDict()

    def get(self, key: K, stamp: Stamp, now: dt.datetime) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, entry_stamp, until = entry
        if entry_stamp != stamp or (until is not None and now >= until):
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V, stamp: Stamp, until: dt.datetime | None) -> None:
        self._entries[key] = (value, stamp, until)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class Memory:
    """People by platform account, and replies that are the same for all, by request."""

    def __init__(self, changes: Changes, *, people: int = 20_000, replies: int = 512) -> None:
        self.changes = changes
        self._people: _Entries[tuple[Platform, str], Person] = _Entries(people)
        self._replies: _Entries[ReplyKey, Reply] = _Entries(replies)

    def people_stamp(self) -> Stamp:
        """Return the stamp to take before reading a person from the database."""
        # A new member or identity changes no one already known.
        return self.changes.stamp(PEOPLE_TABLES, new_rows=False)

    def person(self, platform: Platform, user_id: str, now: dt.datetime) -> Person | None:
        """Return the person behind an account if they are known and nothing about them changed."""
        return self._people.get((platform, user_id), self.people_stamp(), now)

    def remember_person(
        self, platform: Platform, user_id: str, person: Person, stamp: Stamp
    ) -> None:
        """Keep a person read from the database under the stamp taken before reading."""
        self._people.put((platform, user_id), person, stamp, None)

    def reply_stamp(self, tables: tuple[str, ...]) -> Stamp:
        """Return the stamp to take before a reply's data is read."""
        return self.changes.stamp(tables)

    def reply(self, key: ReplyKey, tables: tuple[str, ...], now: dt.datetime) -> Reply | None:
        """Return a reply given before to the same request, if its data has not changed."""
        return self._replies.get(key, self.reply_stamp(tables), now)

    def remember_reply(
        self,
        key: ReplyKey,
        reply: Reply,
        stamp: Stamp,
        now: dt.datetime,
        until: dt.datetime | None,
    ) -> None:
        """Keep a reply for the same request by others, for its lifetime and at most MAX_AGE."""
        latest = now + MAX_AGE
        self._replies.put(key, reply, stamp, latest if until is None else min(until, latest))
