"""Planning meetings from chat: the one-line form, the dialog, previews, Save once, notices."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import i18n
from bot.app import build_dispatcher
from bot.config import Config
from bot.core import Platform
from bot.dispatch import Dispatcher
from bot.markup import to_plain
from handlers.notices import notice_message
from storage.db import open_database, session_factory
from storage.models import Delivery, Dialog, Identity, Meeting
from tests.helpers import NOW, Chat, Sessions, assert_well_formed, buttons, stored

ONE_LINE = (
    "/newmeeting 3. Netzwerktreffen | 29.03.2027 14:00-17:00 | IHK Düsseldorf, "
    "Ernst-Schneider-Platz 1 | Begrüßung\nErfahrungsaustausch Druckluft"
)
PREVIEW = (
    "Vorschau: So sehen es die Mitglieder.\n\n"
    "3. Netzwerktreffen #1\n"
    "🗓 Mo., 29. März 2027, 14:00–17:00 Uhr\n"
    "📍 IHK Düsseldorf, Ernst-Schneider-Platz 1\n"
    "👥 Zusagen: 0 · vielleicht: 0\n\n"
    "Tagesordnung\n"
    "Begrüßung\nErfahrungsaustausch Druckluft"
)


async def pressed(chat: Chat, label: str) -> str:
    """Press a button of the last reply and return the answer as the person reads it."""
    return to_plain((await chat.press(label)).text)


async def meetings(sessions: Sessions) -> list[tuple[str, dt.datetime, str | None, str | None]]:
    return await stored(
        sessions,
        select(Meeting.title, Meeting.starts_at, Meeting.location, Meeting.online_url).order_by(
            Meeting.id
        ),
    )


def berlin(month: int, day: int, hour: int) -> dt.datetime:
    zone = Config().network.zone
    return dt.datetime(2027, month, day, hour, tzinfo=zone).astimezone(dt.UTC)


async def test_the_one_line_form_previews_exactly_what_members_will_see(
    coordinator: Chat, member: Chat, sessions: Sessions
) -> None:
    preview = await coordinator.reply(ONE_LINE)
    assert to_plain(preview.text) == PREVIEW
    assert_well_formed(preview.text)
    assert [b.label for row in preview.buttons for b in row] == ["💾 Speichern", "✖ Abbrechen"]
    assert await meetings(sessions) == []  # nothing is stored before Save
    saved = await coordinator.press("Speichern")
    assert saved.edit_origin
    assert to_plain(saved.text).startswith(
        "✅ Gespeichert als #1: Die Mitglieder finden es unter /meetings.\n\n"
    )
    assert await meetings(sessions) == [
        (
            "3. Netzwerktreffen",
            berlin(3, 29, 14),
            "IHK Düsseldorf, Ernst-Schneider-Platz 1",
            None,
        )
    ]
    # The member's /meeting shows what the preview showed, below the heading line.
    shown = await member.send("/meeting 1")
    assert shown.startswith(PREVIEW.split("\n\n", 1)[1])


@pytest.mark.parametrize(
    ("typed", "starts"),
    [
        ("29.03.27 14:00", berlin(3, 29, 14)),
        ("2027-03-29T14:00", berlin(3, 29, 14)),
        ("29.3. 14 Uhr", berlin(3, 29, 14)),
        ("2027-03-29 14:00", berlin(3, 29, 14)),
    ],
)
async def test_short_german_and_iso_dates_are_accepted(
    coordinator: Chat, sessions: Sessions, typed: str, starts: dt.datetime
) -> None:
    await coordinator.send(f"/newmeeting Treffen | {typed} | Rathaus")
    await pressed(coordinator, "Speichern")
    [(_title, stored_start, _place, _url)] = await meetings(sessions)
    assert stored_start == starts


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("31.02. 14:00", "Einen Tag 31.02. gibt es im Kalender nicht."),
        ("29.03.2027 25:00", "25:00 ist keine Uhrzeit"),
        ("24.11.2026 14:00", "Di., 24. Nov. 2026, 14:00 Uhr liegt in der Vergangenheit."),
        ("29.03.2027 14:00-13:00", "Das Ende (Mo., 29. März 2027, 13:00 Uhr) muss nach dem"),
        ("28.03.2027 02:30", "02:30 am So., 28. März 2027 gibt es in Europe/Berlin nicht"),
    ],
)
async def test_bad_dates_are_refused_saying_what_is_wrong_and_store_nothing(
    coordinator: Chat, sessions: Sessions, when: str, problem: str
) -> None:
    reply = await coordinator.reply(f"/newmeeting Treffen | {when} | Rathaus")
    assert reply.is_error
    assert to_plain(reply.text).startswith(problem)
    assert await meetings(sessions) == []
    assert await stored(sessions, select(Dialog.member_id)) == []


async def test_a_time_in_the_autumn_fold_is_the_first_and_the_preview_says_so(
    coordinator: Chat,
) -> None:
    text = await coordinator.send("/newmeeting Nachtschicht | 31.10.2027 02:30 | Werk")
    assert "🗓 So., 31. Okt. 2027, 02:30 Uhr" in text
    assert text.endswith(
        "02:30 am So., 31. Okt. 2027 gibt es zweimal, weil in dieser Nacht die Uhren "
        "zurückgestellt werden: Ich habe die erste genommen (02:30 CEST). Für die zweite "
        "schreiben Sie 2027-10-31T02:30+01:00."
    )


async def test_a_link_is_the_online_link_and_other_text_the_place(
    coordinator: Chat, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting Online | 29.03.2027 14:00 | https://example.org/raum?id=1")
    await pressed(coordinator, "Speichern")
    await coordinator.send("/newmeeting Vor Ort | 29.03.2027 14:00 | Rathaus, Saal 2")
    await pressed(coordinator, "Speichern")
    assert [(place, url) for _t, _s, place, url in await meetings(sessions)] == [
        (None, "https://example.org/raum?id=1"),
        ("Rathaus, Saal 2", None),
    ]


async def test_save_twice_or_on_an_old_preview_stores_nothing_twice_and_says_so(
    coordinator: Chat, sessions: Sessions
) -> None:
    old = await coordinator.reply("/newmeeting Erstes | 29.03.2027 14:00 | Rathaus")
    current = await coordinator.reply("/newmeeting Zweites | 30.03.2027 14:00 | Rathaus")
    await pressed(coordinator, "Speichern")
    coordinator.last = current
    again = await coordinator.press("Speichern")
    assert again.is_error
    assert to_plain(again.text) == (
        "Das ist schon gespeichert (#1); nichts wurde doppelt gespeichert."
    )
    coordinator.last = old
    stale = await coordinator.press("Speichern")
    assert to_plain(stale.text) == (
        "Diese Vorschau ist nicht mehr aktuell, darum wurde nichts gespeichert. "
        "Bitte senden Sie den Befehl noch einmal."
    )
    assert [title for title, *_rest in await meetings(sessions)] == ["Zweites"]


async def test_a_forged_save_from_a_member_is_refused(
    coordinator: Chat, member: Chat, sessions: Sessions
) -> None:
    preview = await coordinator.reply("/newmeeting Treffen | 29.03.2027 14:00 | Rathaus")
    member.last = preview  # the member presses a copy of the coordinator's button
    refused = await member.press("Speichern")
    assert (
        to_plain(refused.text) == "/meeting_save ist der Koordination des Netzwerks vorbehalten."
    )
    assert await meetings(sessions) == []
    await pressed(coordinator, "Speichern")
    assert len(await meetings(sessions)) == 1


async def test_members_cannot_plan_meetings(member: Chat, sessions: Sessions) -> None:
    text = await member.send("/newmeeting Treffen | 29.03.2027 14:00 | Rathaus")
    assert text == "/newmeeting ist der Koordination des Netzwerks vorbehalten."
    assert await member.send("Treffen") == (
        "Befehle beginnen mit einem Schrägstrich, zum Beispiel /meetings. /help zeigt alle."
    )


async def test_the_dialog_asks_step_by_step_and_ends_in_the_same_preview(
    coordinator: Chat, sessions: Sessions
) -> None:
    question = await coordinator.reply("/neuestreffen")
    assert to_plain(question.text) == "Neues Treffen, Schritt 1 von 5: Wie heißt es?"
    assert buttons(question) == ["cancel"]
    assert (await coordinator.send("3. Netzwerktreffen")).startswith("Schritt 2 von 5")
    step3 = await coordinator.reply("29.03.2027 14:00")
    assert to_plain(step3.text).startswith("Schritt 3 von 5: Wann endet es?")
    assert buttons(step3) == ["skip", "cancel"]
    refused = await coordinator.reply("13:00")
    assert refused.is_error
    assert to_plain(refused.text).startswith(
        "Das Ende (Mo., 29. März 2027, 13:00 Uhr) muss nach dem Beginn"
    )
    assert "Schritt 3 von 5" in to_plain(refused.text)  # asked again
    assert (await coordinator.send("17 Uhr")).startswith("Schritt 4 von 5")
    assert (await coordinator.send("IHK Düsseldorf, Ernst-Schneider-Platz 1")).startswith(
        "Schritt 5 von 5"
    )
    preview = await coordinator.reply("Begrüßung\nErfahrungsaustausch Druckluft")
    assert to_plain(preview.text) == PREVIEW
    await pressed(coordinator, "Speichern")
    assert [title for title, *_rest in await meetings(sessions)] == ["3. Netzwerktreffen"]
    # The dialog is over: a plain message is no answer any more.
    assert (await coordinator.send("noch was")).startswith("Befehle beginnen mit")


async def test_optional_steps_can_be_skipped_by_button_or_word(
    coordinator: Chat, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting")
    await coordinator.send("Online-Sprechstunde")
    await coordinator.send("2027-03-29T10:00")
    assert (await pressed(coordinator, "Überspringen")).startswith("Schritt 4 von 5")
    await coordinator.send("https://example.org/sprechstunde")
    preview = await coordinator.reply("-")
    assert "Tagesordnung" not in to_plain(preview.text)
    assert "💻 online (https://example.org/sprechstunde)" in to_plain(preview.text)
    refused = await coordinator.send("/skip")
    assert refused == "Bitte drücken Sie einen der Knöpfe oder senden Sie /cancel."
    coordinator.last = preview
    await pressed(coordinator, "Speichern")
    assert await meetings(sessions) == [
        ("Online-Sprechstunde", berlin(3, 29, 10), None, "https://example.org/sprechstunde")
    ]


async def test_cancel_ends_the_dialog_and_stores_nothing(
    coordinator: Chat, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting")
    await coordinator.send("Treffen")
    stopped = await coordinator.press("Abbrechen")
    assert to_plain(stopped.text) == "Abgebrochen: Es wurde nichts gespeichert."
    assert (await coordinator.send("29.03.2027 14:00")).startswith("Befehle beginnen mit")
    assert await stored(sessions, select(Dialog.member_id)) == []
    assert await coordinator.send("/abbrechen") == (
        "Es läuft gerade nichts, das sich abbrechen ließe."
    )


@pytest.fixture
async def restarted(tmp_path: Path) -> AsyncIterator[Dispatcher]:
    """A second dispatcher on the same database file, as after a restart of the bot."""
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'klimabot.db'}")
    dispatcher = build_dispatcher(
        Config(), session_factory(engine), {(Platform.CONSOLE, "coordinator")}
    )
    dispatcher.clock = lambda: NOW + dt.timedelta(minutes=5)
    yield dispatcher
    await dispatcher.settled()
    await engine.dispose()


async def test_a_dialog_survives_a_restart(
    coordinator: Chat, restarted: Dispatcher, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting")
    await coordinator.send("3. Netzwerktreffen")
    await coordinator.send("29.03.2027 14:00-17:00")
    after = Chat(restarted, "coordinator")
    assert (await after.send("IHK Düsseldorf")).startswith("Schritt 5 von 5")
    preview = await after.send("-")
    assert "🗓 Mo., 29. März 2027, 14:00–17:00 Uhr" in preview
    await pressed(after, "Speichern")
    assert [title for title, *_rest in await meetings(sessions)] == ["3. Netzwerktreffen"]


async def test_a_dialog_expires_and_its_late_answer_is_not_taken(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting")
    await coordinator.send("3. Netzwerktreffen")
    dispatcher.clock = lambda: NOW + dt.timedelta(minutes=29)
    assert (await coordinator.send("29.03.2027 14:00")).startswith("Schritt 3 von 5")
    # Each answer gives another half hour; then it runs out.
    dispatcher.clock = lambda: NOW + dt.timedelta(minutes=29 + 30)
    late = await coordinator.reply("17:00")
    assert late.is_error
    assert to_plain(late.text) == (
        "Ihr /neuestreffen ist nach 30 Minuten ohne Antwort abgelaufen, darum galt Ihre "
        "Nachricht nicht als Antwort und es wurde nichts gespeichert. Senden Sie "
        "/neuestreffen, um neu zu beginnen."
    )
    assert (await coordinator.send("IHK")).startswith("Befehle beginnen mit")
    assert await stored(sessions, select(Dialog.member_id)) == []
    assert await meetings(sessions) == []


async def test_a_preview_left_too_long_saves_nothing(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting Treffen | 29.03.2027 14:00 | Rathaus")
    dispatcher.clock = lambda: NOW + dt.timedelta(minutes=31)
    text = await pressed(coordinator, "Speichern")
    assert text.startswith("Diese Vorschau ist abgelaufen, darum wurde nichts gespeichert.")
    assert await meetings(sessions) == []


async def _answered(dispatcher: Dispatcher, coordinator: Chat) -> None:
    """Store meeting #1 that three members answered yes, maybe and no, and one who did not."""
    await coordinator.send("/newmeeting 3. Netzwerktreffen | 29.03.2027 14:00-17:00 | IHK")
    await pressed(coordinator, "Speichern")
    for name, answer in (("ja", "yes"), ("vielleicht", "maybe"), ("nein", "no")):
        await Chat(dispatcher, name).send(f"/rsvp 1 {answer}")
    await Chat(dispatcher, "still").send("/meetings")


async def _told(sessions: Sessions) -> list[tuple[str, str]]:
    """Return who has a notice to read, and the text they read."""
    rows = await stored(
        sessions,
        select(Identity.user_id, Delivery.notice_id, Delivery.member_id)
        .join(Identity, Identity.member_id == Delivery.member_id)
        .where(Delivery.notice_id.is_not(None))
        .order_by(Identity.user_id),
    )
    texts = []
    async with sessions() as session:
        for user, notice_id, member_id in rows:
            with i18n.using(i18n.localizer("de", Config().network.zone)):
                reply = await notice_message(session, notice_id, member_id)
            texts.append((user, to_plain(reply.text)))
    return texts


async def test_an_edit_tells_yes_and_maybe_members_what_changed(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(dispatcher, coordinator)
    preview = await coordinator.send("/editmeeting 1 zeit 30.03.2027 15:00-17:00")
    assert preview.startswith(
        "Dieses Treffen ändern? #1\n"
        "Beginn: Mo., 29. März 2027, 14:00 Uhr → Di., 30. März 2027, 15:00 Uhr\n"
        "Ende: Mo., 29. März 2027, 17:00 Uhr → Di., 30. März 2027, 17:00 Uhr\n\n"
        "Die Mitglieder sehen:\n\n"
        "3. Netzwerktreffen #1\n"
        "🗓 Di., 30. März 2027, 15:00–17:00 Uhr\n"
    )
    assert preview.endswith("2 Mitglieder, die zu- oder vielleicht zugesagt haben, erfahren es.")
    assert await _told(sessions) == []  # nobody is told before Save
    saved = await pressed(coordinator, "Speichern")
    assert saved.startswith(
        "✅ Geändert. 2 Mitglieder, die zu- oder vielleicht zugesagt haben, erfahren es."
    )
    notice = (
        "🔔 Geändert: 3. Netzwerktreffen #1\n"
        "Beginn: Mo., 29. März 2027, 14:00 Uhr → Di., 30. März 2027, 15:00 Uhr\n"
        "Ende: Mo., 29. März 2027, 17:00 Uhr → Di., 30. März 2027, 17:00 Uhr"
    )
    assert await _told(sessions) == [("ja", notice), ("vielleicht", notice)]
    assert await stored(sessions, select(Meeting.sequence, Meeting.starts_at)) == [
        (1, berlin(3, 30, 15))
    ]


async def test_an_edit_asks_what_to_change_when_not_told(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(dispatcher, coordinator)
    question = await coordinator.reply("/editmeeting 1")
    assert to_plain(question.text).startswith("Was möchten Sie an 3. Netzwerktreffen ändern?")
    assert "editmeeting:1:place" in buttons(question)
    asked = await pressed(coordinator, "Ort")
    assert asked.startswith("Was ist der neue Wert für „Ort“?")
    preview = await coordinator.send("Rathaus, Plenarsaal")
    assert preview.startswith("Dieses Treffen ändern? #1\nOrt: IHK → Rathaus, Plenarsaal\n")
    await pressed(coordinator, "Speichern")
    # A place is no time: calendars still need the new one, so the sequence rises.
    assert await stored(sessions, select(Meeting.location, Meeting.sequence)) == [
        ("Rathaus, Plenarsaal", 1)
    ]
    told = await _told(sessions)
    assert [user for user, _text in told] == ["ja", "vielleicht"]
    assert told[0][1].endswith("Ort: IHK → Rathaus, Plenarsaal")


@pytest.mark.parametrize(
    ("change", "column", "value"),
    [
        ("link https://example.org/online", "online_url", "https://example.org/online"),
        ("title 3. Netzwerktreffen (verlegt)", "title", "3. Netzwerktreffen (verlegt)"),
        ("tagesordnung Wärmepumpen", "agenda", "Wärmepumpen"),
        ("ort https://example.org/online", "online_url", "https://example.org/online"),
    ],
)
async def test_edits_in_english_or_german_words(
    coordinator: Chat, sessions: Sessions, change: str, column: str, value: str
) -> None:
    await _answered(coordinator.dispatcher, coordinator)
    await coordinator.send(f"/editmeeting 1 {change}")
    await pressed(coordinator, "Speichern")
    assert await stored(sessions, select(getattr(Meeting, column))) == [(value,)]


async def test_bad_edits_are_refused_and_change_nothing(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(dispatcher, coordinator)
    assert (await coordinator.send("/editmeeting 1 farbe grün")).startswith(
        "„farbe“ kenne ich nicht. Ändern können Sie: Titel, Zeit, Ende, Ort, Online-Link, "
        "Tagesordnung."
    )
    assert (await coordinator.send("/editmeeting 1 zeit 31.02.2027 14:00")) == (
        "Einen Tag 31.02.2027 gibt es im Kalender nicht."
    )
    assert (await coordinator.send("/editmeeting 1 ort IHK")) == (
        "So ist das Treffen schon; es gibt nichts zu ändern."
    )
    assert (await coordinator.send("/editmeeting 9 ort IHK")).startswith(
        "Es gibt kein Treffen #9."
    )
    assert await stored(sessions, select(Meeting.sequence, Meeting.location)) == [(0, "IHK")]
    assert await _told(sessions) == []


async def test_cancelling_tells_yes_and_maybe_members_only(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(dispatcher, coordinator)
    preview = await coordinator.reply("/treffenabsagen 1")
    assert to_plain(preview.text).startswith("Dieses Treffen absagen?\n\n3. Netzwerktreffen #1\n")
    assert [b.label for row in preview.buttons for b in row] == [
        "❌ Treffen absagen",
        "↩ Nicht absagen",
    ]
    done = await pressed(coordinator, "Treffen absagen")
    assert done.startswith(
        "❌ Abgesagt. 2 Mitglieder, die zu- oder vielleicht zugesagt haben, erfahren es."
    )
    notice = "❌ Abgesagt: 3. Netzwerktreffen #1\nMo., 29. März 2027, 14:00–17:00 Uhr"
    assert await _told(sessions) == [("ja", notice), ("vielleicht", notice)]
    [(cancelled_at, sequence)] = await stored(
        sessions, select(Meeting.cancelled_at, Meeting.sequence)
    )
    assert (cancelled_at, sequence) == (NOW, 1)
    assert await coordinator.send("/cancelmeeting 1") == "Dieses Treffen ist schon abgesagt."


async def test_keeping_a_meeting_changes_nothing(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(dispatcher, coordinator)
    await coordinator.send("/cancelmeeting 1")
    assert (await pressed(coordinator, "Nicht absagen")) == (
        "Abgebrochen: Es wurde nichts gespeichert."
    )
    assert await stored(sessions, select(Meeting.cancelled_at)) == [(None,)]
    assert await _told(sessions) == []


async def test_a_preview_of_a_meeting_changed_meanwhile_saves_nothing(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(dispatcher, coordinator)
    await coordinator.send("/cancelmeeting 1")
    async with sessions() as session:  # moved by someone else, e.g. an import
        meeting = await session.get(Meeting, 1)
        assert meeting is not None
        meeting.sequence += 1
        await session.commit()
    text = await pressed(coordinator, "Treffen absagen")
    assert text == (
        "Das Treffen wurde seit dieser Vorschau geändert, darum wurde nichts gespeichert. "
        "Bitte senden Sie den Befehl noch einmal."
    )
    assert await stored(sessions, select(Meeting.cancelled_at)) == [(None,)]


async def test_coordinators_see_the_german_command_names_in_help(coordinator: Chat) -> None:
    text = await coordinator.send("/help")
    for name in ("/neuestreffen", "/treffenaendern", "/treffenabsagen"):
        assert name in text


async def test_plain_messages_in_a_group_are_no_answers(
    dispatcher: Dispatcher, coordinator: Chat, sessions: Sessions
) -> None:
    await coordinator.send("/newmeeting")
    in_group = Chat(dispatcher, "coordinator", is_group=True)
    assert await in_group.answer("Stammtisch") is None
    assert (await coordinator.send("Netzwerktreffen")).startswith("Schritt 2 von 5")
    [data] = await stored(sessions, select(Dialog.data))
    assert data == ('{"title": "Netzwerktreffen"}',)


async def test_an_english_speaking_coordinator_plans_in_english(
    dispatcher: Dispatcher, sessions: Sessions
) -> None:
    coordinator = Chat(dispatcher, "coordinator", language_code="en")
    question = await coordinator.reply("/newmeeting")
    assert to_plain(question.text) == "New meeting, step 1 of 5: what is its title?"
    await coordinator.send("Network meeting")
    assert await coordinator.send("31.02.2027 14:00") == (
        "There is no day 31.02.2027 in the calendar.\n"
        "Step 2 of 5: when does it start? For example 29.03.2027 14:00, 29.3. 14 Uhr or "
        "2027-03-29 14:00; an end may follow, as in 14:00-17:00."
    )
    await coordinator.send("2027-03-29 14:00-17:00")
    await coordinator.send("https://example.org/meet")
    preview = await coordinator.reply("/skip")
    assert to_plain(preview.text).startswith(
        "Preview: this is how members will see it.\n\nNetwork meeting #1\n"
        "🗓 Mon, Mar 29, 2027, 2:00\u202fPM–5:00\u202fPM\n"
    )
    assert [b.label for row in preview.buttons for b in row] == ["💾 Save", "✖ Cancel"]
    assert (await pressed(coordinator, "Save")).startswith(
        "✅ Saved as #1: members find it in /meetings."
    )


async def test_a_new_start_keeps_the_length_and_the_end_can_change_alone(
    coordinator: Chat, sessions: Sessions
) -> None:
    await _answered(coordinator.dispatcher, coordinator)
    ends = select(Meeting.starts_at, Meeting.ends_at)
    await coordinator.send("/editmeeting 1 time 30.03.2027 15:00")
    await pressed(coordinator, "Speichern")
    assert await stored(sessions, ends) == [(berlin(3, 30, 15), berlin(3, 30, 18))]
    await coordinator.send("/editmeeting 1 ende 16:30")
    await pressed(coordinator, "Speichern")
    assert await stored(sessions, ends) == [
        (berlin(3, 30, 15), berlin(3, 30, 16) + dt.timedelta(minutes=30))
    ]
    await coordinator.send("/editmeeting 1 end -")
    await pressed(coordinator, "Speichern")
    assert await stored(sessions, ends) == [(berlin(3, 30, 15), None)]
    assert await stored(sessions, select(Meeting.sequence)) == [(3,)]


async def test_a_meeting_keeps_a_place_or_a_link(coordinator: Chat, sessions: Sessions) -> None:
    await _answered(coordinator.dispatcher, coordinator)
    assert await coordinator.send("/editmeeting 1 ort -") == (
        "Ein Treffen braucht einen Ort oder einen Online-Link."
    )
    await coordinator.send("/editmeeting 1 link https://example.org/hybrid")
    await pressed(coordinator, "Speichern")
    await coordinator.send("/editmeeting 1 ort -")
    await pressed(coordinator, "Speichern")
    assert await stored(sessions, select(Meeting.location, Meeting.online_url)) == [
        (None, "https://example.org/hybrid")
    ]
