"""Tests of the Telegram Bot API test peer: its strictness over raw HTTP, and a real PTB bot."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.telegram_peer import (
    BLOCKED,
    CHAT_NOT_FOUND,
    NOT_MODIFIED,
    QUERY_TOO_OLD,
    WEBHOOK_CONFLICT,
    Entity,
    Json,
    Limit,
    TelegramPeer,
)

App = Application[Any, Any, Any, Any, Any, Any]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


class BotApi:
    """A raw HTTP client of the peer, as a bot without a library would talk to it."""

    def __init__(self, session: aiohttp.ClientSession, peer: TelegramPeer) -> None:
        self.session = session
        self.peer = peer

    async def __call__(self, method: str, **params: Any) -> tuple[int, Json]:
        """Call a method with a JSON body; return the HTTP status and the answer."""
        url = f"{self.peer.url}/bot{self.peer.token}/{method}"
        async with self.session.post(url, json=params) as response:
            return response.status, await response.json()

    async def ok(self, method: str, **params: Any) -> Any:
        """Call a method that must succeed; return its result."""
        status, body = await self(method, **params)
        assert (status, body["ok"]) == (200, True), body
        return body["result"]

    async def error(self, method: str, **params: Any) -> tuple[int, str]:
        """Call a method that must fail; return the error code and description."""
        status, body = await self(method, **params)
        assert body["ok"] is False
        assert status == body["error_code"]
        return status, body["description"]

    async def upload(
        self, method: str, field: str, file: tuple[str, bytes, str], **params: Any
    ) -> tuple[int, Json]:
        """Upload a file as multipart/form-data, other fields as strings."""
        form = aiohttp.FormData()
        for key, value in params.items():
            form.add_field(key, value if isinstance(value, str) else json.dumps(value))
        form.add_field(field, file[1], filename=file[0], content_type=file[2])
        url = f"{self.peer.url}/bot{self.peer.token}/{method}"
        async with self.session.post(url, data=form) as response:
            return response.status, await response.json()


@pytest.fixture
async def api(telegram_peer: TelegramPeer) -> AsyncIterator[BotApi]:
    """A raw Bot API client of the running peer."""
    async with aiohttp.ClientSession() as session:
        yield BotApi(session, telegram_peer)


@pytest.fixture
async def anna(telegram_peer: TelegramPeer) -> int:
    """A user who has written to the bot, so that her private chat exists; her id."""
    user = telegram_peer.user(1001, "Anna", username="anna")
    await user.send("hallo")
    return user.id


def free_port() -> int:
    """Return a loopback port that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def png(width: int, height: int) -> bytes:
    """Return a small valid PNG image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = b"".join(b"\x00" + b"\x10\x80\x30" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


# --- raw HTTP: the Bot API's shape ---


async def test_unknown_token_is_unauthorized_and_unknown_method_not_found(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    async with api.session.post(f"{telegram_peer.url}/bot999:WRONG/getMe") as response:
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }
    assert await api.error("sendMessages", chat_id=1, text="x") == (
        404,
        "Not Found: method not found",
    )


async def test_get_me_describes_the_bot_and_method_names_ignore_case(api: BotApi) -> None:
    me = await api.ok("GETME")
    assert me == {
        "id": 123456,
        "is_bot": True,
        "first_name": "Klimabot",
        "username": "KlimaTestBot",
        "can_join_groups": True,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
        "can_connect_to_business": False,
        "has_main_web_app": False,
    }
    assert await api.ok("getme") == me


async def test_parameters_arrive_as_query_form_json_or_multipart(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    telegram_peer.limits.private_chat = None
    base = f"{telegram_peer.url}/bot{telegram_peer.token}/sendMessage"
    markup = json.dumps({"inline_keyboard": [[{"text": "Ja", "callback_data": "rsvp:1:yes"}]]})
    async with api.session.get(base, params={"chat_id": str(anna), "text": "query"}) as r:
        assert r.status == 200
    form = {
        "chat_id": str(anna),
        "text": "<b>form</b>",
        "parse_mode": "HTML",
        "reply_markup": markup,
    }
    async with api.session.post(base, data=form) as r:
        assert r.status == 200
    await api.ok("sendMessage", chat_id=str(anna), text="json", reply_markup=json.loads(markup))
    multipart = aiohttp.FormData({"chat_id": str(anna), "text": "multipart"})
    multipart.add_field("note", b"ignored", filename="note.txt")
    async with api.session.post(base, data=multipart) as r:
        assert r.status == 200
    sent = telegram_peer.messages(anna)
    assert [m.text for m in sent] == ["query", "form", "json", "multipart"]
    assert sent[1].entities == (Entity("bold", 0, 4),)
    assert sent[1].buttons == sent[2].buttons == [[("Ja", "rsvp:1:yes")]]
    assert [c.chat_id for c in telegram_peer.calls_to("sendmessage")] == [anna] * 4


# --- raw HTTP: HTML, lengths and keyboards ---


async def test_html_becomes_plain_text_and_entities_in_utf16(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    source = (
        "😀 <b>Treffen &amp; <i>Tipps</i></b> &lt;3 &quot;x&quot; &#39;y&#x27;\n"
        '<a href="https://example.org/?a=1&amp;b=2">Link</a> '
        '<span class="tg-spoiler">geheim</span> <tg-spoiler>auch</tg-spoiler> '
        '<pre><code class="language-python">print(1)</code></pre>'
        "<blockquote expandable>Zitat</blockquote> <u>u</u><s>s</s>"
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji> <code>/tips</code>'
    )
    result = await api.ok("sendMessage", chat_id=anna, text=source, parse_mode="HTML")
    message = await telegram_peer.wait_for(anna)
    assert (
        message.text
        == result["text"]
        == ("😀 Treffen & Tipps <3 \"x\" 'y'\nLink geheim auch print(1)Zitat us👍 /tips")
    )
    assert message.html == source
    assert message.spans("bold") == ["Treffen & Tipps"]
    assert message.spans("italic") == ["Tipps"]
    assert message.spans("text_link") == ["Link"]
    assert message.spans("spoiler") == ["geheim", "auch"]
    assert message.spans("pre") == ["print(1)"]
    assert message.spans("expandable_blockquote") == ["Zitat"]
    assert message.spans("custom_emoji") == ["👍"]
    assert message.spans("code") == ["/tips"]
    bold, italic = message.entities[0], message.entities[1]
    assert (bold.offset, bold.length, italic.offset) == (3, 15, 13)  # the emoji is two units
    link = next(e for e in message.entities if e.type == "text_link")
    assert link.url == "https://example.org/?a=1&b=2"
    pre = next(e for e in message.entities if e.type == "pre")
    assert pre.language == "python"
    assert [e["type"] for e in result["entities"]] == [e.type for e in message.entities]


@pytest.mark.parametrize(
    ("source", "detail"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("Ä <br/>", 'Unsupported start tag "br/" at byte offset 3'),
        ("<b>fett", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", 'Unexpected end tag "b" at byte offset 1'),
        ("3 < 4", 'Unsupported start tag "" at byte offset 2'),
        ("<<b>x</b>", 'Unsupported start tag "<b" at byte offset 0'),
        ("4 > 3", 'Unexpected ">" at byte offset 2'),
        ("Tom & Jerry", "Can't find end of the entity starting at byte offset 4"),
        ("a&nbsp;b", 'Unsupported HTML entity "&nbsp;" at byte offset 1'),
        ("&#0;", 'Invalid numeric HTML entity "&#0;" at byte offset 0'),
        ('<b class="x">y</b>', 'Unsupported attribute "class" in start tag "b" at byte offset 0'),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ("<a>x</a>", 'Tag "a" needs a non-empty href attribute at byte offset 0'),
        ('<a href="x>y">z</a>', 'Can\'t parse start tag "a" at byte offset 0'),
        ('<code class="language-py">x</code>', 'Tag "code" may have only class="language-..."'),
        ("<code><b>x</b></code>", 'Tag "b" can\'t be inside tag "code" at byte offset 6'),
        ("<b><pre>x</pre></b>", 'Tag "pre" can\'t be inside tag "b" at byte offset 3'),
        (
            "<blockquote><blockquote>x</blockquote></blockquote>",
            'Tag "blockquote" can\'t be inside tag "blockquote" at byte offset 12',
        ),
        ('<a href="https://a.de"><a href="https://b.de">x</a></a>', 'Tag "a" can\'t be inside'),
        ("<!-- note -->x", 'Unsupported start tag "!--" at byte offset 0'),
    ],
)
async def test_invalid_html_is_refused_as_telegram_does(
    telegram_peer: TelegramPeer, api: BotApi, anna: int, source: str, detail: str
) -> None:
    code, description = await api.error(
        "sendMessage", chat_id=anna, text=source, parse_mode="HTML"
    )
    assert code == 400
    assert description.startswith("Bad Request: can't parse entities: " + detail)
    assert telegram_peer.messages(anna) == []


async def test_lengths_are_measured_after_parsing_in_utf16_units(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    telegram_peer.limits.private_chat = None
    await api.ok("sendMessage", chat_id=anna, text="&amp;" * 4096, parse_mode="HTML")
    await api.ok("sendMessage", chat_id=anna, text="😀" * 2048)
    too_long = (400, "Bad Request: message is too long")
    assert await api.error("sendMessage", chat_id=anna, text="😀" * 2048 + "x") == too_long
    assert await api.error("sendMessage", chat_id=anna, text="x" * 4097) == too_long
    empty = (400, "Bad Request: message text is empty")
    assert (
        await api.error("sendMessage", chat_id=anna, text="<b> </b>\n", parse_mode="HTML") == empty
    )
    assert await api.error("sendMessage", chat_id=anna, text="") == empty
    padded = await api.ok("sendMessage", chat_id=anna, text="\n <b>x</b> ", parse_mode="HTML")
    assert (padded["text"], padded["entities"]) == (
        "x",
        [{"type": "bold", "offset": 0, "length": 1}],
    )
    document = ("notes.txt", b"Hallo", "text/plain")
    caption = "<i>" + "é" * 1024 + "</i>"
    status, _ = await api.upload(
        "sendDocument", "document", document, chat_id=str(anna), caption=caption, parse_mode="HTML"
    )
    assert status == 200
    status, body = await api.upload(
        "sendDocument", "document", document, chat_id=str(anna), caption="x" * 1025
    )
    assert (status, body["description"]) == (400, "Bad Request: message caption is too long")


@pytest.mark.parametrize(
    ("button", "description"),
    [
        ({"text": "x", "callback_data": "ä" * 33}, "Bad Request: BUTTON_DATA_INVALID"),
        ({"text": "x", "callback_data": ""}, "Bad Request: BUTTON_DATA_INVALID"),
        ({"text": "", "callback_data": "a"}, "Bad Request: BUTTON_TEXT_INVALID"),
        ({"text": "x"}, "Bad Request: can't parse inline keyboard button: Text buttons"),
        (
            {"text": "x", "callback_data": "a", "url": "https://example.org"},
            "Bad Request: can't parse inline keyboard button: exactly one of",
        ),
        ({"text": "x", "url": "example.org"}, "Bad Request: BUTTON_URL_INVALID"),
        (
            {"text": "x", "callback_data": None},
            'Bad Request: can\'t parse inline keyboard button: Field "callback_data" must be',
        ),
    ],
)
async def test_inline_keyboards_are_checked(
    api: BotApi, anna: int, button: Json, description: str
) -> None:
    markup = {"inline_keyboard": [[button]]}
    code, text = await api.error("sendMessage", chat_id=anna, text="x", reply_markup=markup)
    assert code == 400
    assert text.startswith(description)


async def test_callback_data_may_use_all_64_bytes(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    markup = {
        "inline_keyboard": [
            [
                {"text": "ä", "callback_data": "ä" * 32},
                {"text": "Web", "url": "https://example.org"},
            ]
        ]
    }
    await api.ok("sendMessage", chat_id=anna, text="x", reply_markup=markup)
    assert (await telegram_peer.wait_for(anna)).buttons == [
        [("ä", "ä" * 32), ("Web", "https://example.org")]
    ]


# --- raw HTTP: who may be written to ---


async def test_unknown_chats_and_blocking_users_are_refused(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    telegram_peer.user(2002, "Ben")  # known to the test, but never wrote to the bot
    assert await api.error("sendMessage", chat_id=2002, text="x") == (400, CHAT_NOT_FOUND)
    assert await api.error("sendMessage", chat_id="@nobody", text="x") == (400, CHAT_NOT_FOUND)
    assert await api.error("sendChatAction", chat_id=2002, action="typing") == (
        400,
        CHAT_NOT_FOUND,
    )
    telegram_peer.block(anna)
    assert await api.error("sendMessage", chat_id=anna, text="x") == (403, BLOCKED)
    assert await api.error("sendChatAction", chat_id=anna, action="typing") == (403, BLOCKED)
    updates = await api.ok("getUpdates")
    assert updates[-1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    user = telegram_peer.user(anna, "Anna")
    with pytest.raises(ValueError, match="blocked the bot"):
        await user.send("hallo?")
    group = telegram_peer.group(-100, "Netzwerk", members=[user])
    await user.send("/tips", chat=group)  # blocking is about the private chat only
    await api.ok("sendMessage", chat_id=group.id, text="Hallo Gruppe")
    telegram_peer.unblock(anna)
    await api.ok("sendMessage", chat_id=anna, text="wieder da")


async def test_group_messages_reach_the_bot_only_when_meant_for_it(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    group = telegram_peer.group(-100, "Netzwerk", members=[anna])
    await anna.send("Guten Morgen", chat=group)
    command = await anna.send("/tips@KlimaTestBot Wärme", chat=group)
    await anna.send("/start@OtherBot", chat=group)
    mention = await anna.send("Frage an @KlimaTestBot", chat=group)
    updates = await api.ok("getUpdates")
    assert [u["message"]["message_id"] for u in updates] == [
        command["message_id"],
        mention["message_id"],
    ]
    assert command["entities"] == [{"type": "bot_command", "offset": 0, "length": 18}]
    telegram_peer.privacy_mode = False
    await anna.send("Guten Abend", chat=group)
    assert len(await api.ok("getUpdates")) == 3


# --- raw HTTP: rate limits and retry_after windows ---


async def test_private_chat_limit_opens_a_retry_after_window(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    await api.ok("sendMessage", chat_id=anna, text="eins")
    status, body = await api("sendMessage", chat_id=anna, text="zwei")
    assert (status, body) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        },
    )
    assert telegram_peer.violations() == []
    await api.ok("getMe")  # other methods go on
    assert (await api.error("sendMessage", chat_id=anna, text="drei"))[0] == 429
    assert [c.params["text"] for c in telegram_peer.violations()] == ["drei"]
    assert telegram_peer.max_rate(anna, 1.0) == 3
    assert [c.status for c in telegram_peer.calls_to("sendMessage")] == [200, 429, 429]


async def test_group_and_overall_limits_are_configurable(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    group = telegram_peer.group(-100, "Netzwerk", members=[])
    telegram_peer.limits.group_chat = Limit(2, 60.0)
    await api.ok("sendMessage", chat_id=group.id, text="1")
    await api.ok("sendMessage", chat_id=group.id, text="2")
    code, description = await api.error("sendMessage", chat_id=group.id, text="3")
    assert (code, description) in {
        (429, "Too Many Requests: retry after 60"),
        (429, "Too Many Requests: retry after 59"),
    }
    telegram_peer.end_flood()
    telegram_peer.limits.private_chat = None
    telegram_peer.limits.overall = Limit(2, 1.0)
    assert (await api.error("sendMessage", chat_id=anna, text="4"))[0] == 429
    assert telegram_peer.flood_active
    assert telegram_peer.max_rate(None, 1.0) == 4
    assert telegram_peer.max_rate(group.id, 60.0) == 3


async def test_injected_flood_answers_429_and_records_violations(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    telegram_peer.limits.private_chat = None
    telegram_peer.inject_flood(retry_after=7, count=2)
    status, body = await api("sendMessage", chat_id=anna, text="a")
    assert (status, body["parameters"]) == (429, {"retry_after": 7})
    status, body = await api("editMessageText", chat_id=anna, message_id=1, text="b")
    assert (status, body["parameters"]["retry_after"]) == (429, 7)
    assert [c.method for c in telegram_peer.violations()] == ["editMessageText"]
    await api.ok("sendChatAction", chat_id=anna, action="typing")  # not a message
    telegram_peer.end_flood()
    assert (await api.error("sendMessage", chat_id=anna, text="c"))[0] == 429  # the second
    telegram_peer.end_flood()
    await api.ok("sendMessage", chat_id=anna, text="d")
    assert len(telegram_peer.violations()) == 1


# --- raw HTTP: edits, callback answers, commands, files ---


async def test_edit_message_text_returns_the_message_and_refuses_no_change(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    telegram_peer.limits.private_chat = None
    markup = {"inline_keyboard": [[{"text": "Mehr", "callback_data": "more"}]]}
    sent = await api.ok(
        "sendMessage", chat_id=anna, text="<b>Seite 1</b>", parse_mode="HTML", reply_markup=markup
    )
    first = await telegram_peer.wait_for(anna)
    same = {"chat_id": anna, "message_id": sent["message_id"], "parse_mode": "HTML"}
    assert await api.error(
        "editMessageText", **same, text="<b>Seite 1</b>", reply_markup=markup
    ) == (400, NOT_MODIFIED)
    edited = await api.ok("editMessageText", **same, text="<b>Seite 1</b>")  # drops the keyboard
    assert "reply_markup" not in edited
    assert edited["edit_date"] >= edited["date"]
    view = await telegram_peer.wait_for(anna)
    assert (view.edited, view.buttons, view.message_id) == (True, [], first.message_id)
    edited = await api.ok("editMessageText", **same, text="Seite <i>2</i>", reply_markup=markup)
    assert edited["text"] == "Seite 2"
    assert telegram_peer.messages(anna)[-1].buttons == [[("Mehr", "more")]]
    assert await api.error("editMessageText", chat_id=anna, message_id=99, text="x") == (
        400,
        "Bad Request: message to edit not found",
    )
    assert await api.error("editMessageText", chat_id=anna, message_id=1, text="x") == (
        400,
        "Bad Request: message can't be edited",
    )
    assert await api.error(
        "editMessageReplyMarkup", chat_id=anna, message_id=sent["message_id"], reply_markup=markup
    ) == (400, NOT_MODIFIED)
    await api.ok("editMessageReplyMarkup", chat_id=anna, message_id=sent["message_id"])
    assert telegram_peer.messages(anna)[-1].buttons == []


async def test_callback_queries_are_answered_once(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    await anna.send("/meetings")
    markup = {"inline_keyboard": [[{"text": "Zusagen", "callback_data": "rsvp:7:yes"}]]}
    await api.ok("sendMessage", chat_id=anna.id, text="Treffen", reply_markup=markup)
    message = await telegram_peer.wait_for(anna.id)
    query = await anna.press(message, "Zusagen")
    forged = await anna.press_raw(message, "rsvp:8:yes")
    with pytest.raises(LookupError):
        await anna.press(message, "Absagen")
    updates = await api.ok("getUpdates")
    pressed = updates[-2]["callback_query"]
    assert pressed["data"] == "rsvp:7:yes"
    assert pressed["message"]["message_id"] == message.message_id
    assert {"id", "from", "chat_instance", "data", "message"} <= pressed.keys()
    assert updates[-1]["callback_query"]["data"] == "rsvp:8:yes"
    too_long = await api.error(
        "answerCallbackQuery", callback_query_id=query["id"], text="x" * 201
    )
    assert too_long == (400, "Bad Request: MESSAGE_TOO_LONG")
    await api.ok("answerCallbackQuery", callback_query_id=query["id"], text="Danke")
    assert await api.error("answerCallbackQuery", callback_query_id=query["id"]) == (
        400,
        QUERY_TOO_OLD,
    )
    assert await api.error("answerCallbackQuery", callback_query_id="123") == (400, QUERY_TOO_OLD)
    await api.ok("answerCallbackQuery", callback_query_id=forged["id"], show_alert=True)
    answered = [(a.data, a.text, a.show_alert) for a in telegram_peer.answered_callbacks]
    assert answered == [("rsvp:7:yes", "Danke", False), ("rsvp:8:yes", "", True)]


async def test_commands_are_checked_and_kept_per_scope_and_language(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    commands = [{"command": "tips", "description": "Tipps suchen"}]
    await api.ok("setMyCommands", commands=commands)
    english = [{"command": "tips", "description": "Search tips"}]
    await api.ok("setMyCommands", commands=english, language_code="en")
    chat_scope = {"type": "chat", "chat_id": anna}
    await api.ok("setMyCommands", commands=commands, scope=chat_scope)
    assert await api.ok("getMyCommands") == commands
    assert await api.ok("getMyCommands", language_code="en") == english
    assert await api.ok("getMyCommands", scope={"type": "all_group_chats"}) == []
    assert telegram_peer.commands(chat_scope) == commands
    await api.ok("deleteMyCommands", language_code="en")
    assert await api.ok("getMyCommands", language_code="en") == []
    bad: list[tuple[Json, str]] = [
        (
            {"commands": [{"command": "Tips", "description": "x"}]},
            "Bad Request: BOT_COMMAND_INVALID",
        ),
        (
            {"commands": [{"command": "t" * 33, "description": "x"}]},
            "Bad Request: BOT_COMMAND_INVALID",
        ),
        (
            {"commands": [{"command": "t", "description": ""}]},
            "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID",
        ),
        (
            {"commands": [{"command": "t", "description": "x" * 257}]},
            "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID",
        ),
        (
            {"commands": [{"command": f"c{i}", "description": "x"} for i in range(101)]},
            "Bad Request: BOT_COMMANDS_TOO_MUCH",
        ),
        (
            {"commands": commands, "language_code": "deu"},
            "Bad Request: invalid language code specified",
        ),
        (
            {"commands": commands, "scope": {"type": "everyone"}},
            "Bad Request: can't parse BotCommandScope JSON object",
        ),
        ({"commands": commands, "scope": {"type": "chat", "chat_id": 5}}, CHAT_NOT_FOUND),
    ]
    for params, description in bad:
        assert await api.error("setMyCommands", **params) == (400, description)


async def test_documents_and_photos_are_stored_and_downloadable(
    telegram_peer: TelegramPeer, api: BotApi, anna: int
) -> None:
    telegram_peer.limits.private_chat = None
    ics = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    status, body = await api.upload(
        "sendDocument",
        "document",
        ("treffen.ics", ics, "text/calendar"),
        chat_id=str(anna),
        caption="<b>Termine</b>",
        parse_mode="HTML",
    )
    assert status == 200, body
    document = body["result"]["document"]
    assert (document["file_name"], document["mime_type"], document["file_size"]) == (
        "treffen.ics",
        "text/calendar",
        len(ics),
    )
    message = await telegram_peer.wait_for(anna)
    assert message.document is not None
    assert (message.document.filename, message.document.data, message.text) == (
        "treffen.ics",
        ics,
        "Termine",
    )
    assert message.spans("bold") == ["Termine"]
    image = png(40, 20)
    status, body = await api.upload(
        "sendPhoto", "photo", ("chart.png", image, "image/png"), chat_id=str(anna)
    )
    assert status == 200, body
    assert (body["result"]["photo"][0]["width"], body["result"]["photo"][0]["height"]) == (40, 20)
    assert (await telegram_peer.wait_for(anna)).photo is not None
    status, body = await api.upload(
        "sendPhoto", "photo", ("chart.png", b"not an image", "image/png"), chat_id=str(anna)
    )
    assert (status, body["description"]) == (400, "Bad Request: IMAGE_PROCESS_FAILED")
    status, body = await api.upload(
        "sendDocument", "document", ("empty.txt", b"", "text/plain"), chat_id=str(anna)
    )
    assert (status, body["description"]) == (400, "Bad Request: file must be non-empty")
    assert await api.error("sendDocument", chat_id=anna, document="unknown-id") == (
        400,
        "Bad Request: wrong file identifier/HTTP URL specified",
    )
    again = await api.ok("sendDocument", chat_id=anna, document=document["file_id"])
    assert again["document"]["file_id"] == document["file_id"]
    file = await api.ok("getFile", file_id=document["file_id"])
    async with api.session.get(
        f"{telegram_peer.base_file_url}{telegram_peer.token}/{file['file_path']}"
    ) as r:
        assert (r.status, await r.read()) == (200, ics)


async def test_close_is_refused_early_and_log_out_ends_the_session(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    code, description = await api.error("close")
    assert code == 429
    assert description.startswith("Too Many Requests: retry after ")
    telegram_peer.close_lockout = 0
    assert await api.ok("close") is True
    assert await api.ok("logOut") is True
    assert await api.error("getMe") == (401, "Unauthorized")


# --- raw HTTP: getUpdates and webhooks ---


async def test_get_updates_confirms_with_offset_and_long_polls(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    await anna.send("eins")
    await anna.send("zwei")
    first = await api.ok("getUpdates", limit=1)
    assert [u["message"]["text"] for u in first] == ["eins"]
    both = await api.ok("getUpdates", offset=first[0]["update_id"])
    assert [u["message"]["text"] for u in both] == ["eins", "zwei"]
    assert await api.ok("getUpdates", offset=both[-1]["update_id"] + 1, timeout=0) == []
    assert telegram_peer.pending_updates == []

    started = time.monotonic()
    assert await api.ok("getUpdates", offset=both[-1]["update_id"] + 1, timeout=0.2) == []
    assert 0.2 <= time.monotonic() - started < 0.5

    async def once_polling() -> None:
        await telegram_peer.wait_until(lambda: telegram_peer.long_polling)
        await anna.send("drei")

    task = asyncio.create_task(once_polling())
    started = time.monotonic()
    updates = await api.ok("getUpdates", offset=both[-1]["update_id"] + 1, timeout=10)
    waited = time.monotonic() - started
    await task
    assert [u["message"]["text"] for u in updates] == ["drei"]
    assert updates[0]["update_id"] == both[-1]["update_id"] + 1
    assert waited < 5  # woken by the update, not ended by its timeout
    assert not telegram_peer.long_polling


async def test_the_peer_tells_when_the_bot_has_taken_every_update(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    await anna.send("eins")
    taken = asyncio.create_task(telegram_peer.wait_received())
    handed_out = await api.ok("getUpdates")
    # Handed out is not taken: only the next offset confirms it.
    assert not taken.done()
    await api.ok("getUpdates", offset=handed_out[-1]["update_id"] + 1, timeout=0)
    await asyncio.wait_for(taken, 5)
    await anna.send("zwei")
    with pytest.raises(TimeoutError):
        await telegram_peer.wait_received(timeout=0.1)


async def test_allowed_updates_choose_which_new_updates_are_kept(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    assert await api.ok("getUpdates", allowed_updates=["callback_query"]) == []
    await anna.send("wird nicht zugestellt")
    assert await api.ok("getUpdates", allowed_updates=[]) == []
    await anna.send("wieder da")
    assert [u["message"]["text"] for u in await api.ok("getUpdates")] == ["wieder da"]


async def test_users_edit_their_messages_and_reply_to_the_bot(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    sent = await anna.send("/tip 3")
    await anna.edit(sent, "/tip 4")
    question = await api.ok(
        "sendMessage",
        chat_id=anna.id,
        text="Welche Kategorie?",
        reply_markup={"inline_keyboard": [[{"text": "Web", "url": "https://example.org"}]]},
    )
    answer = await anna.send("Wärme", reply_to=question)
    with pytest.raises(ValueError, match="opens a URL"):
        await anna.press(question, "Web")
    first, edited, replied = await api.ok("getUpdates")
    assert first["message"]["text"] == "/tip 3"
    assert edited["edited_message"]["text"] == "/tip 4"
    assert edited["edited_message"]["message_id"] == sent["message_id"]
    assert edited["edited_message"]["edit_date"] >= sent["date"]
    assert edited["edited_message"]["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 4}
    ]
    assert replied["message"]["reply_to_message"]["message_id"] == question["message_id"]
    assert answer["message_id"] == question["message_id"] + 1


async def test_a_second_get_updates_terminates_the_first(
    telegram_peer: TelegramPeer, api: BotApi
) -> None:
    first = asyncio.create_task(api("getUpdates", timeout=10))
    await telegram_peer.wait_until(lambda: telegram_peer.long_polling)
    assert await api.ok("getUpdates", timeout=0) == []
    status, body = await first
    assert (status, body["description"]) == (
        409,
        "Conflict: terminated by other getUpdates request; "
        "make sure that only one bot instance is running",
    )


class Receiver:
    """A webhook endpoint that records updates and answers with the statuses it is given."""

    def __init__(self) -> None:
        self.updates: list[Json] = []
        self.secrets: list[str | None] = []
        self.statuses: list[int] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        """Record one delivery."""
        status = self.statuses.pop(0) if self.statuses else 200
        if status == 200:
            self.updates.append(await request.json())
            self.secrets.append(request.headers.get(SECRET_HEADER))
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A running webhook endpoint on loopback."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    yield receiver
    await runner.cleanup()


async def eventually(condition: Callable[[], bool], seconds: float = 5) -> None:
    """Wait until the condition holds."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


async def test_webhook_delivers_in_order_with_the_secret_and_retries(
    telegram_peer: TelegramPeer, api: BotApi, receiver: Receiver
) -> None:
    anna = telegram_peer.user(1001, "Anna")
    await anna.send("vorher")
    receiver.statuses = [500, 502]
    dead = f"http://127.0.0.1:{free_port()}/hook"
    assert await api.ok("setWebhook", url=dead, secret_token="s3cr3t-_X") is True
    assert await api.error("getUpdates") == (409, WEBHOOK_CONFLICT)
    for _ in range(300):
        info = await api.ok("getWebhookInfo")
        if "last_error_message" in info:
            break
        await asyncio.sleep(0.01)
    assert info["url"] == dead
    assert info["pending_update_count"] == 1
    assert info["last_error_message"].startswith("Connection failed")
    await api.ok("setWebhook", url=receiver.url, secret_token="s3cr3t-_X")
    await anna.send("nachher")
    await eventually(lambda: len(receiver.updates) == 2)
    assert [u["message"]["text"] for u in receiver.updates] == ["vorher", "nachher"]
    assert receiver.secrets == ["s3cr3t-_X", "s3cr3t-_X"]
    assert receiver.statuses == []  # the 500 and 502 were retried
    assert (await api.ok("getWebhookInfo"))["pending_update_count"] == 0
    assert await api.error("setWebhook", url=receiver.url, secret_token="bad secret!") == (
        400,
        "Bad Request: secret token contains unallowed characters",
    )
    status, body = await api("deleteWebhook")
    assert (status, body["description"]) == (200, "Webhook was deleted")
    await anna.send("wieder polling")
    assert [u["message"]["text"] for u in await api.ok("getUpdates")] == ["wieder polling"]


# --- a real python-telegram-bot Application against the peer ---


def application(peer: TelegramPeer, handlers: list[BaseHandler[Update, Any, Any]]) -> App:
    """Build a PTB application that talks to the peer."""
    app = (
        ApplicationBuilder()
        .token(peer.token)
        .base_url(peer.base_url)
        .base_file_url(peer.base_file_url)
        .build()
    )
    app.add_handlers(handlers)
    return app


@contextlib.asynccontextmanager
async def running(
    peer: TelegramPeer,
    handlers: list[BaseHandler[Update, Any, Any]],
    *,
    webhook_secret: str | None = None,
) -> AsyncIterator[App]:
    """Run a PTB application by hand, polling or with a webhook, and stop it afterwards."""
    app = application(peer, handlers)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    if webhook_secret is None:
        await app.updater.start_polling(poll_interval=0.0, timeout=10)
    else:
        port = free_port()
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=port,
            url_path="telegram",
            webhook_url=f"http://127.0.0.1:{port}/telegram",
            secret_token=webhook_secret,
        )
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()


def failures(peer: TelegramPeer) -> list[tuple[str, str | None]]:
    """Return the failed calls, except the long poll that stopping PTB ends with a shorter one."""
    return [
        (call.method, call.description)
        for call in peer.calls
        if call.status >= 400 and (call.method, call.status) != ("getUpdates", 409)
    ]


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the text received, in bold."""
    assert update.effective_message is not None
    assert update.effective_message.text is not None
    await update.effective_message.reply_html(f"<b>Echo:</b> {update.effective_message.text}")


async def test_ptb_bot_answers_a_command_promptly_without_busy_polling(
    telegram_peer: TelegramPeer,
) -> None:
    anna = telegram_peer.user(1001, "Anna", username="anna")
    ben = telegram_peer.user(1002, "Ben")
    async with running(telegram_peer, [CommandHandler("start", echo)]):
        await anna.send("/start")
        reply = await telegram_peer.wait_for(anna.id)
        assert reply.text == "Echo: /start"
        assert reply.spans("bold") == ["Echo:"]
        started = time.perf_counter()
        await ben.send("/start@KlimaTestBot")
        reply = await telegram_peer.wait_for(ben.id)
        assert time.perf_counter() - started < 0.1
        assert reply.text == "Echo: /start@KlimaTestBot"
        # Between updates it waits in a long poll instead of asking again and again.
        await telegram_peer.wait_until(lambda: telegram_peer.long_polling)
        last = telegram_peer.calls_to("getUpdates")[-1]
        assert last.status == 0
        assert float(last.params["timeout"]) > 0
    assert telegram_peer.pending_updates == []
    assert [c.method for c in telegram_peer.calls[:3]] == ["getMe", "deleteWebhook", "getUpdates"]
    assert failures(telegram_peer) == []


async def test_ptb_bot_receives_button_presses(telegram_peer: TelegramPeer) -> None:
    async def offer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Zusagen", callback_data="rsvp:1:yes")]]
        )
        await update.effective_message.reply_text("Treffen am 29.", reply_markup=keyboard)

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        assert query.data is not None
        await query.answer("Gespeichert")
        await query.edit_message_text(f"Antwort: {query.data}")

    anna = telegram_peer.user(1001, "Anna")
    telegram_peer.limits.private_chat = None
    async with running(
        telegram_peer, [CommandHandler("meetings", offer), CallbackQueryHandler(pressed)]
    ):
        await anna.send("/meetings")
        offer_message = await telegram_peer.wait_for(anna.id)
        assert offer_message.buttons == [[("Zusagen", "rsvp:1:yes")]]
        await anna.press(offer_message, 0)
        edited = await telegram_peer.wait_for(anna.id)
        assert (edited.edited, edited.text, edited.buttons) == (True, "Antwort: rsvp:1:yes", [])
    assert [(a.data, a.text) for a in telegram_peer.answered_callbacks] == [
        ("rsvp:1:yes", "Gespeichert")
    ]
    assert failures(telegram_peer) == []


async def test_ptb_document_upload_is_stored(telegram_peer: TelegramPeer) -> None:
    anna = telegram_peer.user(1001, "Anna")
    await anna.send("/calendar")
    calendar = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
    async with application(telegram_peer, []) as app:
        sent = await app.bot.send_document(
            anna.id, calendar, filename="treffen.ics", caption="<b>Termine</b>", parse_mode="HTML"
        )
    assert sent.document is not None
    assert sent.document.file_name == "treffen.ics"
    assert sent.caption == "Termine"
    message = await telegram_peer.wait_for(anna.id)
    assert message.document is not None
    assert message.document.filename == "treffen.ics"
    assert message.document.mime_type == "text/calendar"  # PTB guesses it from the name
    assert message.document.data == calendar
    assert message.spans("bold") == ["Termine"]


async def test_ptb_sees_telegram_errors_as_its_exceptions(telegram_peer: TelegramPeer) -> None:
    anna = telegram_peer.user(1001, "Anna")
    ben = telegram_peer.user(1002, "Ben")
    await anna.send("hallo")
    await ben.send("hallo")
    telegram_peer.limits.private_chat = None
    async with application(telegram_peer, []) as app:
        telegram_peer.inject_flood(retry_after=5)
        with pytest.raises(RetryAfter) as flood:
            await app.bot.send_message(anna.id, "x")
        assert flood.value.retry_after == dt.timedelta(seconds=5)
        with pytest.raises(RetryAfter):
            await app.bot.send_message(anna.id, "too early")
        assert [c.params["text"] for c in telegram_peer.violations()] == ["too early"]
        telegram_peer.end_flood()
        telegram_peer.block(ben.id)
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await app.bot.send_message(ben.id, "x")
        with pytest.raises(BadRequest, match="parse entities"):
            await app.bot.send_message(anna.id, "<b>x", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="Chat not found"):
            await app.bot.send_message(4242, "x")
        sent = await app.bot.send_message(anna.id, "<b>ok</b>", parse_mode=ParseMode.HTML)
        assert sent.text == "ok"
        assert sent.date.year >= 2024
        await app.bot.set_my_commands([("tips", "Tipps suchen")])
        assert [c.command for c in await app.bot.get_my_commands()] == ["tips"]


async def test_ptb_bot_gets_updates_sent_while_it_was_stopped(telegram_peer: TelegramPeer) -> None:
    anna = telegram_peer.user(1001, "Anna")
    telegram_peer.limits.private_chat = None
    async with running(telegram_peer, [MessageHandler(filters.TEXT, echo)]):
        await anna.send("eins")
        assert (await telegram_peer.wait_for(anna.id)).text == "Echo: eins"
    await anna.send("zwei")
    await anna.send("drei")
    assert len(telegram_peer.pending_updates) == 2
    async with running(telegram_peer, [MessageHandler(filters.TEXT, echo)]):
        assert (await telegram_peer.wait_for(anna.id)).text == "Echo: zwei"
        assert (await telegram_peer.wait_for(anna.id)).text == "Echo: drei"
    assert [m.text for m in telegram_peer.messages(anna.id)] == [
        "Echo: eins",
        "Echo: zwei",
        "Echo: drei",
    ]
    assert failures(telegram_peer) == []


async def test_ptb_webhook_receives_updates_with_the_secret(telegram_peer: TelegramPeer) -> None:
    anna = telegram_peer.user(1001, "Anna")
    async with running(telegram_peer, [CommandHandler("start", echo)], webhook_secret="geheim_1"):
        await anna.send("/start")
        assert (await telegram_peer.wait_for(anna.id)).text == "Echo: /start"
        [set_webhook] = telegram_peer.calls_to("setWebhook")
        assert set_webhook.params["secret_token"] == "geheim_1"
    assert telegram_peer.pending_updates == []
    assert telegram_peer.calls_to("getUpdates") == []
    assert failures(telegram_peer) == []
