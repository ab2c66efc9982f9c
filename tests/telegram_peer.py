"""A Telegram Bot API peer on loopback that tests drive as the users, as strict as Telegram."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import re
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

logger = logging.getLogger(__name__)

Json = dict[str, Any]
Buttons = list[list[tuple[str, str]]]

# The methods that count as messages for the rate limits and retry_after windows.
MESSAGE_METHODS = frozenset({"sendmessage", "editmessagetext", "senddocument", "sendphoto"})
# Update types Telegram sends only when a bot asks for them in allowed_updates.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CHAT_ACTIONS = frozenset(
    [
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    ]
)
COMMAND_SCOPES = frozenset(
    [
        "default",
        "all_private_chats",
        "all_group_chats",
        "all_chat_administrators",
        "chat",
        "chat_administrators",
        "chat_member",
    ]
)
ENTITY_TYPES = frozenset(
    [
        "mention",
        "hashtag",
        "cashtag",
        "bot_command",
        "url",
        "email",
        "phone_number",
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
    ]
)

CANT_PARSE = "Bad Request: can't parse entities: "
TEXT_EMPTY = "Bad Request: message text is empty"
TEXT_TOO_LONG = "Bad Request: message is too long"
CAPTION_TOO_LONG = "Bad Request: message caption is too long"
CHAT_NOT_FOUND = "Bad Request: chat not found"
BLOCKED = "Forbidden: bot was blocked by the user"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLL_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_UPLOAD = 50 * 2**20
MAX_PHOTO = 10 * 2**20


class ApiError(Exception):
    """A Bot API error answer: HTTP status, description and optional retry_after."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def json(self) -> Json:
        """Return the error as Telegram's response body."""
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def flood_error(seconds: float) -> ApiError:
    """Return a 429 that asks to wait the given time, rounded up to whole seconds."""
    retry_after = max(1, math.ceil(seconds))
    return ApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after)


@dataclass(frozen=True)
class File:
    """An uploaded file as the peer stored it."""

    filename: str
    mime_type: str
    data: bytes


@dataclass(frozen=True)
class Entity:
    """A formatting entity; offset and length count UTF-16 code units, as Telegram does."""

    type: str
    offset: int
    length: int
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None

    def json(self) -> Json:
        """Return the entity as a Bot API MessageEntity."""
        out: Json = {"type": self.type, "offset": self.offset, "length": self.length}
        extras = {
            "url": self.url,
            "language": self.language,
            "custom_emoji_id": self.custom_emoji_id,
        }
        out.update({key: value for key, value in extras.items() if value is not None})
        return out


@dataclass(frozen=True)
class BotMessage:
    """A bot message to a chat in the state it had after one send or edit."""

    chat_id: int
    message_id: int
    text: str  # what the user sees: the plain text, or the caption of a document or photo
    html: str | None  # the text or caption exactly as sent, when parse_mode was HTML
    entities: tuple[Entity, ...]
    buttons: Buttons  # rows of (text, callback_data or url)
    document: File | None
    photo: File | None
    edited: bool
    seq: int  # position in the peer's log of bot message events
    raw: Json  # the Message object Telegram returned

    def spans(self, entity_type: str) -> list[str]:
        """Return the piece of text each entity of the given type covers."""
        return [
            utf16_slice(self.text, e.offset, e.length)
            for e in self.entities
            if e.type == entity_type
        ]


@dataclass
class Call:
    """One request the bot made, with its outcome."""

    method: str
    params: Json
    at: float  # time.monotonic() on arrival
    chat_id: int | None = None
    status: int = 0  # the HTTP status answered; 0 while a long poll is still waiting
    description: str | None = None
    in_flood_window: bool = False  # arrived while a retry_after window was running

    @property
    def is_message(self) -> bool:
        """Tell whether the call counts as a message for the rate limits."""
        return self.method.lower() in MESSAGE_METHODS


@dataclass(frozen=True)
class AnsweredCallback:
    """A callback query the bot answered."""

    query_id: str
    user_id: int
    data: str
    text: str
    show_alert: bool
    url: str | None


@dataclass(frozen=True)
class Limit:
    """At most ``count`` messages in any window of ``seconds``."""

    count: int
    seconds: float


@dataclass
class Limits:
    """Telegram's published message limits; None switches one off."""

    overall: Limit | None = Limit(30, 1.0)
    private_chat: Limit | None = Limit(1, 1.0)
    group_chat: Limit | None = Limit(20, 60.0)


# --- HTML validation: Telegram's parse_mode=HTML, turned into plain text and entities ---


class HtmlError(ValueError):
    """The detail of Telegram's "can't parse entities" for invalid HTML."""


_TAG_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_TAG_ATTRIBUTES = {
    "a": {"href"},
    "span": {"class"},
    "tg-emoji": {"emoji-id"},
    "code": {"class"},
    "blockquote": {"expandable"},
}
_FORMATTING = frozenset({"bold", "italic", "underline", "strikethrough", "spoiler"})
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"<([^\s>]*)")
_ATTRIBUTE = r"""\s+[^\s=<>"'/]+(?:\s*=\s*(?:"[^"<>]*"|'[^'<>]*'|[^\s"'<>=`]+))?"""
_START_TAG = re.compile(rf"<[a-zA-Z][a-zA-Z0-9-]*((?:{_ATTRIBUTE})*)\s*>")
_ONE_ATTRIBUTE = re.compile(
    r"""\s+([^\s=<>"'/]+)(?:\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)'|([^\s"'<>=`]+)))?"""
)
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)\s*>")
_HTML_ENTITY = re.compile(r"&(#[0-9]{1,8}|#[xX][0-9a-fA-F]{1,8}|[a-zA-Z][a-zA-Z0-9]*);")
_SPECIAL = re.compile(r"[<>&]")


def utf16_len(text: str) -> int:
    """Return the length of text in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def utf16_slice(text: str, offset: int, length: int) -> str:
    """Return the part of text an entity covers (offset and length in UTF-16 units)."""
    units = text.encode("utf-16-le", "surrogatepass")[2 * offset : 2 * (offset + length)]
    return units.decode("utf-16-le", "surrogatepass")


class _At:
    """A position in the HTML source that shows as Telegram's byte offset, counted on demand."""

    def __init__(self, source: str, index: int) -> None:
        self.source, self.index = source, index

    def __str__(self) -> str:
        return str(len(self.source[: self.index].encode("utf-8", "surrogatepass")))


@dataclass
class _OpenTag:
    name: str
    type: str
    start: int
    url: str | None = None
    language: str | None = None
    emoji_id: str | None = None
    in_pre: bool = False  # a <code> directly inside <pre>: it only names the language


def _unescape(source: str, start: int, end: int) -> str:
    """Decode the entities in source[start:end], rejecting a bare '&' or '>'."""
    out: list[str] = []
    i = start
    while i < end:
        special = _SPECIAL.search(source, i, end)
        if special is None:
            out.append(source[i:end])
            break
        out.append(source[i : special.start()])
        i = special.start()
        if source[i] != "&":  # Telegram lets a bare ">" pass; its documentation does not
            raise HtmlError(f'Unexpected "{source[i]}" at byte offset {_At(source, i)}')
        match = _HTML_ENTITY.match(source, i, end)
        if match is None:
            where = _At(source, i)
            raise HtmlError(f"Can't find end of the entity starting at byte offset {where}")
        out.append(_entity_char(source, match))
        i = match.end()
    return "".join(out)


def _entity_char(source: str, match: re.Match[str]) -> str:
    name = match.group(1)
    if not name.startswith("#"):
        if name not in _NAMED_ENTITIES:
            where = _At(source, match.start())
            raise HtmlError(f'Unsupported HTML entity "&{name};" at byte offset {where}')
        return _NAMED_ENTITIES[name]
    code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        where = _At(source, match.start())
        raise HtmlError(f'Invalid numeric HTML entity "&{name};" at byte offset {where}')
    return chr(code)


def _open_tag(source: str, i: int, stack: list[_OpenTag], position: int) -> tuple[_OpenTag, int]:
    """Parse the start tag at source[i]; return it and the index after it."""
    where = _At(source, i)
    name_match = _TAG_NAME.match(source, i)
    name = name_match.group(1).lower() if name_match else ""
    if name not in _TAG_TYPES:
        raise HtmlError(f'Unsupported start tag "{name}" at byte offset {where}')
    match = _START_TAG.match(source, i)
    if match is None:
        raise HtmlError(f'Can\'t parse start tag "{name}" at byte offset {where}')
    attributes: dict[str, str | None] = {}
    for attribute in _ONE_ATTRIBUTE.finditer(source, match.start(1), match.end(1)):
        key = attribute.group(1).lower()
        if key not in _TAG_ATTRIBUTES.get(name, set()):
            raise HtmlError(
                f'Unsupported attribute "{key}" in start tag "{name}" at byte offset {where}'
            )
        value = next((g for g in (2, 3, 4) if attribute.group(g) is not None), None)
        attributes[key] = (
            None
            if value is None
            else _unescape(source, attribute.start(value), attribute.end(value))
        )
    tag = _OpenTag(name, _TAG_TYPES[name], position)
    if name == "a":
        tag.url = attributes.get("href")
        if not tag.url:
            raise HtmlError(f'Tag "a" needs a non-empty href attribute at byte offset {where}')
    elif name == "span" and attributes.get("class") != "tg-spoiler":
        raise HtmlError(f'Tag "span" must have class "tg-spoiler" at byte offset {where}')
    elif name == "tg-emoji":
        tag.emoji_id = attributes.get("emoji-id")
        if not tag.emoji_id or not tag.emoji_id.isdigit():
            raise HtmlError(f'Tag "tg-emoji" needs a numeric emoji-id at byte offset {where}')
    elif name == "blockquote" and "expandable" in attributes:
        tag.type = "expandable_blockquote"
    elif name == "code":
        tag.in_pre = bool(stack) and stack[-1].type == "pre"
        language = attributes.get("class", "") or ""
        if "class" in attributes and not (tag.in_pre and language.startswith("language-")):
            raise HtmlError(
                'Tag "code" may have only class="language-..." and only directly inside "pre" '
                f"at byte offset {where}"
            )
        tag.language = language.removeprefix("language-") or None
    _check_nesting(tag, stack, where)
    return tag, match.end()


def _check_nesting(tag: _OpenTag, stack: list[_OpenTag], where: _At) -> None:
    """Apply Telegram's rules for entities inside entities."""
    quotes = {"blockquote", "expandable_blockquote"}
    for outer in stack:
        if tag.in_pre and outer is stack[-1]:
            continue
        allowed = (
            (outer.type in _FORMATTING and tag.type not in {"code", "pre"})
            or (outer.type in quotes and tag.type not in quotes)
            or (outer.type in {"text_link", "custom_emoji"} and tag.type in _FORMATTING)
        )
        if not allowed:
            raise HtmlError(
                f'Tag "{tag.name}" can\'t be inside tag "{outer.name}" at byte offset {where}'
            )


def parse_html(source: str) -> tuple[str, list[Entity]]:
    """Turn Telegram HTML into plain text and entities, or raise HtmlError."""
    out: list[str] = []
    position = 0
    stack: list[_OpenTag] = []
    entities: list[Entity] = []
    i = 0
    while i < len(source):
        special = _SPECIAL.search(source, i)
        end = len(source) if special is None else special.start()
        if end > i:
            out.append(source[i:end])
            position += utf16_len(source[i:end])
        if special is None:
            break
        i = end
        if source.startswith("</", i):
            i = _close_tag(source, i, stack, entities, position)
        elif source[i] == "<":
            tag, i = _open_tag(source, i, stack, position)
            stack.append(tag)
        else:
            stop = _HTML_ENTITY.match(source, i)
            next_i = stop.end() if stop else i + 1
            char = _unescape(source, i, next_i)
            out.append(char)
            position += utf16_len(char)
            i = next_i
    if stack:
        raise HtmlError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return "".join(out), entities


def _close_tag(
    source: str, i: int, stack: list[_OpenTag], entities: list[Entity], position: int
) -> int:
    where = _At(source, i)
    match = _END_TAG.match(source, i)
    if match is None:
        raise HtmlError(f"Can't parse end tag at byte offset {where}")
    name = match.group(1).lower()
    if not stack:
        raise HtmlError(f'Unexpected end tag "{name}" at byte offset {where}')
    tag = stack[-1]
    if tag.name != name:
        raise HtmlError(
            f'Unmatched end tag at byte offset {where}, expected "</{tag.name}>", '
            f'found "</{name}>"'
        )
    stack.pop()
    if tag.in_pre:
        stack[-1].language = tag.language
    elif position > tag.start:
        entities.append(
            Entity(
                tag.type,
                tag.start,
                position - tag.start,
                url=tag.url,
                language=tag.language,
                custom_emoji_id=tag.emoji_id,
            )
        )
    return match.end()


def trim(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Strip surrounding whitespace as Telegram does, moving and clipping the entities."""
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    text = text.strip()
    total = utf16_len(text)
    moved: list[Entity] = []
    for entity in entities:
        start = max(0, entity.offset - lead)
        end = min(total, entity.offset + entity.length - lead)
        if end > start:
            moved.append(dataclasses.replace(entity, offset=start, length=end - start))
    return text, sorted(moved, key=lambda e: (e.offset, -e.length))


def _given_entities(raw: Any, text: str) -> list[Entity]:
    """Validate an explicit entities list sent instead of a parse_mode."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ApiError(400, "Bad Request: can't parse entities JSON object")
    total = utf16_len(text)
    entities = []
    for item in raw:
        kind, offset, length = item.get("type"), item.get("offset"), item.get("length")
        if kind not in ENTITY_TYPES:
            raise ApiError(400, f'{CANT_PARSE}unsupported entity type "{kind}"')
        if not isinstance(offset, int) or not isinstance(length, int):
            raise ApiError(400, "Bad Request: can't parse entities JSON object")
        if offset < 0 or length < 1 or offset + length > total:
            raise ApiError(400, f"{CANT_PARSE}entity {kind} is outside of the text")
        if kind == "text_link" and not item.get("url"):
            raise ApiError(400, f"{CANT_PARSE}text_link entity needs a url")
        entities.append(Entity(kind, offset, length, item.get("url"), item.get("language")))
    return entities


# --- Request parameters: JSON, form fields and multipart, all typed the same way ---


class Params:
    """A request's parameters, read the way Telegram reads them."""

    def __init__(self, values: Json, files: dict[str, File]) -> None:
        self.values = values
        self.files = files

    @classmethod
    async def read(cls, request: web.Request) -> Params:
        """Read query string and body (JSON, urlencoded form or multipart)."""
        values: Json = dict(request.query)
        files: dict[str, File] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = json.loads(await request.text())
                except ValueError:
                    body = None
                if not isinstance(body, dict):
                    raise ApiError(400, "Bad Request: can't parse JSON object")
                values.update(body)
            elif request.content_type == "application/x-www-form-urlencoded":
                values.update({k: str(v) for k, v in (await request.post()).items()})
            elif request.content_type == "multipart/form-data":
                async for part in await request.multipart():
                    if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                        continue
                    if part.filename is None:
                        values[part.name] = await part.text()
                        continue
                    mime = part.headers.get(aiohttp.hdrs.CONTENT_TYPE, "application/octet-stream")
                    data = bytes(await part.read())
                    if len(data) > MAX_UPLOAD:
                        raise ApiError(413, "Request Entity Too Large")
                    files[part.name] = File(part.filename, mime, data)
        return cls(values, files)

    def text(self, name: str, default: str = "") -> str:
        """Return a string parameter."""
        value = self.values.get(name)
        if value is None:
            return default
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, name: str) -> int | None:
        """Return an integer parameter, or None when it is absent."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            return int(value)
        raise ApiError(400, f"Bad Request: invalid {name} specified")

    def number(self, name: str, default: float) -> float:
        """Return a numeric parameter such as a timeout in seconds."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ApiError(400, f"Bad Request: invalid {name} specified") from None

    def flag(self, name: str) -> bool:
        """Return a Boolean parameter (false when absent)."""
        value = self.values.get(name)
        if isinstance(value, bool) or value is None:
            return bool(value)
        if str(value).lower() in {"true", "1"}:
            return True
        if str(value).lower() in {"false", "0", ""}:
            return False
        raise ApiError(400, f"Bad Request: invalid {name} specified")

    def obj(self, name: str, what: str) -> Any:
        """Return a JSON-serialised parameter (object or array), or None when absent."""
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise ApiError(400, f"Bad Request: can't parse {what} JSON object") from None
        return value

    def chat_id(self) -> int:
        """Return the chat_id (an integer or an @username, which no peer chat has)."""
        value = self.values.get("chat_id")
        if value is None or value == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            raise ApiError(400, CHAT_NOT_FOUND)
        try:
            number = self.integer("chat_id")
        except ApiError:
            raise ApiError(400, CHAT_NOT_FOUND) from None
        assert number is not None
        return number


def inline_keyboard(markup: Any, *, inline_only: bool) -> tuple[Json | None, Buttons]:
    """Validate reply_markup; return it and its inline buttons as (text, data-or-url) rows."""
    if markup is None:
        return None, []
    bad_markup = ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    if not isinstance(markup, dict):
        raise bad_markup
    if "inline_keyboard" not in markup:
        other = {"keyboard", "remove_keyboard", "force_reply"} & markup.keys()
        if inline_only or not other:
            raise bad_markup
        return markup, []
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_markup
    if sum(len(row) for row in rows) > 100:
        raise ApiError(400, "Bad Request: reply markup is too long")
    buttons: Buttons = []
    for row in rows:
        buttons.append([_button(button, bad_markup) for button in row])
    return markup, buttons


def _button(button: Any, bad_markup: ApiError) -> tuple[str, str]:
    cant_parse = "Bad Request: can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise bad_markup
    for key, value in button.items():
        if not isinstance(value, str):
            raise ApiError(400, f'{cant_parse}Field "{key}" must be of type String')
    if not button.get("text", "").strip():
        raise ApiError(400, "Bad Request: BUTTON_TEXT_INVALID")
    actions = [key for key in button if key != "text"]
    if not actions:
        raise ApiError(400, f"{cant_parse}Text buttons are unallowed in the inline keyboard")
    if len(actions) != 1 or actions[0] not in {"callback_data", "url"}:
        raise ApiError(400, f"{cant_parse}exactly one of callback_data and url must be used")
    value = button[actions[0]]
    if actions[0] == "callback_data" and not 1 <= len(value.encode()) <= 64:
        raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    if actions[0] == "url" and not re.fullmatch(r"(https?|tg)://[^\s/?#]+\S*", value):
        raise ApiError(400, "Bad Request: BUTTON_URL_INVALID")
    return button["text"], value


def image_size(data: bytes) -> tuple[int, int] | None:
    """Return (width, height) of a PNG, GIF or JPEG image, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in {b"GIF87a", b"GIF89a"}:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    i = 2 if data.startswith(b"\xff\xd8") else len(data)
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker, size = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in {0xC4, 0xC8, 0xCC}:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + size
    return None


# --- The people and chats a test moves ---

MessageRef = BotMessage | Json


class PeerUser:
    """A Telegram user whom the test moves: sends, edits, presses buttons."""

    def __init__(
        self,
        peer: TelegramPeer,
        user_id: int,
        first_name: str,
        username: str | None,
        language_code: str | None,
    ) -> None:
        self.peer = peer
        self.id = user_id
        self.first_name = first_name
        self.username = username
        self.language_code = language_code

    @property
    def json(self) -> Json:
        """Return the user as a Bot API User."""
        user: Json = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    async def send(
        self, text: str, chat: PeerGroup | None = None, reply_to: MessageRef | None = None
    ) -> Json:
        """Write text to the bot (or into a group) and return the Message."""
        message = self.peer._user_message(self, text, chat, reply_to)
        await asyncio.sleep(0)
        return message

    async def edit(self, message: MessageRef, new_text: str) -> Json:
        """Edit one of this user's messages; the bot gets an edited_message update."""
        edited = self.peer._user_edit(self, message, new_text)
        await asyncio.sleep(0)
        return edited

    async def press(self, message: MessageRef, button: str | int) -> Json:
        """Press a callback button by its text or flat index; return the CallbackQuery."""
        query = self.peer._press(self, message, button, None)
        await asyncio.sleep(0)
        return query

    async def press_raw(self, message: MessageRef, data: str) -> Json:
        """Send a callback query with forged data for a message; return the CallbackQuery."""
        query = self.peer._press(self, message, None, data)
        await asyncio.sleep(0)
        return query


@dataclass
class PeerGroup:
    """A group chat the test created; the bot is a member."""

    id: int
    title: str
    members: list[PeerUser]

    @property
    def json(self) -> Json:
        """Return the group as a Bot API Chat."""
        kind = "supergroup" if self.id <= -1_000_000_000_000 else "group"
        return {"id": self.id, "type": kind, "title": self.title}


@dataclass
class _Chat:
    json: Json
    members: set[int]
    is_group: bool
    messages: dict[int, Json] = field(default_factory=dict)
    views: dict[int, BotMessage] = field(default_factory=dict)  # bot messages, current state
    next_id: int = 1
    sent_at: list[float] = field(default_factory=list)  # accepted messages, for the limits


@dataclass
class _Webhook:
    url: str
    secret: str
    max_connections: int
    ip_address: str
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True)
class _Content:
    """What the user sees of a text or caption."""

    text: str
    html: str | None
    entities: tuple[Entity, ...]
    document: File | None = None
    photo: File | None = None


@dataclass(frozen=True)
class _Described:
    result: Any
    description: str


Handler = Callable[[Params], Awaitable[Any]]


class TelegramPeer:
    """The Telegram Bot API on 127.0.0.1 for one bot, driven by the test as the users."""

    def __init__(
        self,
        token: str = "123456:TEST",
        bot_username: str = "KlimaTestBot",
        *,
        bot_first_name: str = "Klimabot",
    ) -> None:
        if not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", token):
            raise ValueError(f"not a bot token: {token!r}")
        self.token = token
        self.bot_id = int(token.partition(":")[0])
        self.bot_username = bot_username
        self.bot_first_name = bot_first_name
        self.url = ""
        self.limits = Limits()
        # Bots in groups see only commands, mentions and replies to them unless this is off.
        self.privacy_mode = True
        # Telegram refuses close() with 429 in the first ten minutes after a bot launched.
        self.close_lockout = 600.0
        # Telegram retries a failed webhook delivery with growing pauses; these are shorter.
        self.webhook_retry_delay = 0.05
        self.webhook_max_retry_delay = 1.0
        self.webhook_timeout = 10.0
        # The network's round trip for each Bot API call, half on the way in, half out.
        self.call_delay = 0.0
        self.calls: list[Call] = []
        self.answered_callbacks: list[AnsweredCallback] = []
        self.files: dict[str, File] = {}
        self._file_ids: dict[File, str] = {}
        self._file_info: dict[str, Json] = {}
        self._users: dict[int, PeerUser] = {}
        self._chats: dict[int, _Chat] = {}
        self._blocked: set[int] = set()
        self._pending: list[Json] = []
        self._next_update_id = 500_000_001
        self._allowed: frozenset[str] | None = None
        self._webhook: _Webhook | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._poll_generation = 0
        self._long_polls = 0  # getUpdates calls waiting for an update now
        self._events: list[BotMessage] = []
        self._cursors: dict[int, int] = {}
        self._open_queries: dict[str, Json] = {}
        self._ids = itertools.count(1)
        self._flood_until = 0.0
        self._injected: list[int] = []
        self._sent_at: list[float] = []
        self._commands: dict[tuple[str, str], list[Json]] = {}
        self._logged_out = False
        self._stopping = False
        self._started_at = 0.0
        self._wakeup = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._methods: dict[str, Handler] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "sendchataction": self._send_chat_action,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "getfile": self._get_file,
            "close": self._close,
            "logout": self._log_out,
        }

    # --- lifecycle ---

    @classmethod
    async def start(
        cls,
        token: str = "123456:TEST",
        bot_username: str = "KlimaTestBot",
        *,
        bot_first_name: str = "Klimabot",
    ) -> TelegramPeer:
        """Create a peer and start serving on a free port of 127.0.0.1."""
        peer = cls(token, bot_username, bot_first_name=bot_first_name)
        await peer.serve()
        return peer

    async def serve(self, port: int = 0) -> None:
        """Start serving on 127.0.0.1: on a free port, or again on ``port`` after a stop."""
        self._stopping = False
        app = web.Application(client_max_size=MAX_UPLOAD + 2**20)
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self._session = aiohttp.ClientSession()
        self._started_at = time.monotonic()

    async def stop(self) -> None:
        """Stop serving, end long polls and webhook delivery, close every connection."""
        self._stopping = True
        self._pulse()
        await self._stop_webhook_delivery()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        if self._runner is None:
            await self.serve()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """Return the value for ApplicationBuilder.base_url."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        """Return the value for ApplicationBuilder.base_file_url."""
        return f"{self.url}/file/bot"

    # --- the test's side: users, groups, what the bot sent ---

    def user(
        self,
        user_id: int,
        first_name: str,
        username: str | None = None,
        language_code: str | None = "de",
    ) -> PeerUser:
        """Return a user who can write to the bot (their private chat exists once they do)."""
        if user_id <= 0:
            raise ValueError("user ids are positive")
        user = PeerUser(self, user_id, first_name, username, language_code)
        self._users[user_id] = user
        return user

    def group(self, group_id: int, title: str, members: list[PeerUser] | None = None) -> PeerGroup:
        """Create a group chat with the bot and these members."""
        if group_id >= 0:
            raise ValueError("group ids are negative")
        group = PeerGroup(group_id, title, list(members or []))
        self._chats[group_id] = _Chat(group.json, {m.id for m in group.members}, is_group=True)
        return group

    def block(self, user_id: int) -> None:
        """Let the user block the bot: message methods to their chat answer 403."""
        self._blocked.add(user_id)
        self._membership_update(user_id, "member", "kicked")

    def started(self, user: PeerUser) -> None:
        """Let the user have started the bot earlier: their private chat exists."""
        if user.id not in self._chats:
            self._open_private_chat(user)

    def unblock(self, user_id: int) -> None:
        """Let the user unblock the bot again."""
        self._blocked.discard(user_id)
        self._membership_update(user_id, "kicked", "member")

    def inject_flood(self, retry_after: int, count: int = 1) -> None:
        """Answer the next ``count`` message calls outside a retry_after window with 429."""
        self._injected.extend([retry_after] * count)

    def end_flood(self) -> None:
        """End a running retry_after window now, so a test need not wait for it."""
        self._flood_until = 0.0

    @property
    def flood_active(self) -> bool:
        """Tell whether a retry_after window is running."""
        return time.monotonic() < self._flood_until

    def violations(self) -> list[Call]:
        """Return the message calls that arrived while a retry_after window was running."""
        return [call for call in self.calls if call.in_flood_window]

    def max_rate(self, chat_id: int | None, window: float) -> int:
        """Return the most message calls (to one chat, or to all for None) in any window."""
        times = [
            c.at for c in self.calls if c.is_message and (chat_id is None or c.chat_id == chat_id)
        ]
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= window:
                first += 1
            most = max(most, last - first + 1)
        return most

    def calls_to(self, method: str) -> list[Call]:
        """Return the calls of one method (case-insensitive)."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def messages(self, chat_id: int) -> list[BotMessage]:
        """Return the bot's messages in a chat, in their current state."""
        chat = self._chats.get(chat_id)
        return [] if chat is None else [chat.views[key] for key in sorted(chat.views)]

    def commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        """Return the command list the bot set for a scope and language."""
        key = json.dumps(scope or {"type": "default"}, sort_keys=True)
        return list(self._commands.get((key, language_code), []))

    @property
    def pending_updates(self) -> list[Json]:
        """Return the updates not yet confirmed by the bot."""
        return list(self._pending)

    @property
    def long_polling(self) -> bool:
        """Tell whether a getUpdates call is waiting for updates now."""
        return self._long_polls > 0

    async def wait_until(
        self,
        condition: Callable[[], bool],
        timeout: float = 10,  # noqa: ASYNC109 - a deadline for the whole wait
    ) -> None:
        """Return once the condition holds; raise TimeoutError if not.

        The condition is tested again whenever the peer's state changes (an update sent,
        handed out or confirmed, a call answered), and every 50 ms for conditions about
        other things, such as what the bot's database holds or a retry_after running out.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await self._wait_until(condition, min(0.05, deadline - loop.time())):
            if loop.time() >= deadline:
                raise TimeoutError(f"the condition did not hold within {timeout} s")

    async def wait_received(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Return once the bot has taken every update sent so far.

        Polling, it confirms updates with the next getUpdates offset; a webhook answers
        each delivery with 2xx. Taken is not handled yet: the bot may still be working on
        them (see tests/bot/transports/test_telegram.py, ``settle``).
        """
        await self.wait_until(lambda: not self._pending, timeout)

    async def wait_for(
        self,
        chat_id: int,
        predicate: Callable[[BotMessage], bool] | None = None,
        timeout: float = 10,  # noqa: ASYNC109 - a deadline for the whole search, not one await
        after: BotMessage | None = None,
    ) -> BotMessage:
        """Return the next bot message (new or edited) to the chat that fits the predicate."""
        start = after.seq if after is not None else self._cursors.get(chat_id, 0)

        def find() -> BotMessage | None:
            for event in self._events[start:]:
                if event.chat_id == chat_id and (predicate is None or predicate(event)):
                    return event
            return None

        if not await self._wait_until(lambda: find() is not None, timeout):
            seen = [(m.message_id, m.text) for m in self.messages(chat_id)]
            raise TimeoutError(f"no fitting bot message to {chat_id} in {timeout} s; {seen}")
        found = find()
        assert found is not None
        self._cursors[chat_id] = max(self._cursors.get(chat_id, 0), found.seq)
        return found

    # --- internals shared by both sides ---

    def _pulse(self) -> None:
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def _wait_until(self, condition: Callable[[], bool], seconds: float | None) -> bool:
        """Wait until the condition holds (True) or the time is up or the peer stops (False)."""
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while not condition():
            if self._stopping:
                return False
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)
        return True

    def _bot_json(self) -> Json:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": self.bot_first_name,
            "username": self.bot_username,
        }

    def _enqueue(self, kind: str, payload: Json) -> None:
        allowed = kind in self._allowed if self._allowed else kind not in OPT_IN_UPDATES
        if allowed:
            self._pending.append({"update_id": self._next_update_id, kind: payload})
            self._next_update_id += 1
            self._pulse()

    def _new_message(self, chat: _Chat, sender: Json, fields: Json) -> Json:
        message_id = chat.next_id
        chat.next_id += 1
        base = {"message_id": message_id, "from": sender, "chat": chat.json}
        message = {**base, "date": int(time.time()), **fields}
        chat.messages[message_id] = message
        return message

    def _record_view(self, view: BotMessage) -> BotMessage:
        view = dataclasses.replace(view, seq=len(self._events) + 1)
        self._chats[view.chat_id].views[view.message_id] = view
        self._events.append(view)
        self._pulse()
        return view

    def _find(self, ref: MessageRef) -> tuple[_Chat, Json]:
        chat_id, message_id = (
            (ref.chat_id, ref.message_id)
            if isinstance(ref, BotMessage)
            else (ref["chat"]["id"], ref["message_id"])
        )
        chat = self._chats[chat_id]
        return chat, chat.messages[message_id]

    def _user_message(
        self, user: PeerUser, text: str, group: PeerGroup | None, reply_to: MessageRef | None
    ) -> Json:
        if group is None and user.id in self._blocked:
            raise ValueError(f"user {user.id} blocked the bot; call peer.unblock() first")
        if group is None:
            chat = self._chats.get(user.id) or self._open_private_chat(user)
        else:
            chat = self._chats[group.id]
            if user.id not in chat.members:
                raise ValueError(f"user {user.id} is not a member of {group.title}")
        fields: Json = {"text": text}
        entities = _detected_entities(text)
        if entities:
            fields["entities"] = [e.json() for e in entities]
        if reply_to is not None:
            _, target = self._find(reply_to)
            fields["reply_to_message"] = {
                k: v for k, v in target.items() if k != "reply_to_message"
            }
        message = self._new_message(chat, user.json, fields)
        if not chat.is_group or self._bot_sees(message, entities):
            self._enqueue("message", message)
        return message

    def _open_private_chat(self, user: PeerUser) -> _Chat:
        private = {"id": user.id, "type": "private", "first_name": user.first_name}
        if user.username:
            private["username"] = user.username
        chat = self._chats[user.id] = _Chat(private, {user.id}, is_group=False)
        return chat

    def _bot_sees(self, message: Json, entities: list[Entity]) -> bool:
        """Tell whether a group message reaches the bot under privacy mode."""
        if not self.privacy_mode:
            return True
        text: str = message["text"]
        me = f"@{self.bot_username}".lower()
        for entity in entities:
            word = utf16_slice(text, entity.offset, entity.length).lower()
            if entity.type == "bot_command" and ("@" not in word or word.endswith(me)):
                return True
            if entity.type == "mention" and word == me:
                return True
        replied = message.get("reply_to_message", {}).get("from", {})
        return bool(replied.get("id") == self.bot_id)

    def _user_edit(self, user: PeerUser, ref: MessageRef, new_text: str) -> Json:
        chat, message = self._find(ref)
        if message["from"]["id"] != user.id:
            raise ValueError("a user can edit only their own messages")
        entities = _detected_entities(new_text)
        edited = {**message, "text": new_text, "edit_date": int(time.time())}
        edited.pop("entities", None)
        if entities:
            edited["entities"] = [e.json() for e in entities]
        chat.messages[message["message_id"]] = edited
        if not chat.is_group or self._bot_sees(edited, entities):
            self._enqueue("edited_message", edited)
        return edited

    def _press(
        self, user: PeerUser, ref: MessageRef, button: str | int | None, data: str | None
    ) -> Json:
        chat, message = self._find(ref)
        if user.id not in chat.members:
            raise ValueError(f"user {user.id} cannot see chat {chat.json['id']}")
        if data is None:
            data = _callback_data(message, button)
        query_id = str(4_000_000_000_000_000 + next(self._ids))
        query = {
            "id": query_id,
            "from": user.json,
            "chat_instance": str(abs(message["chat"]["id"]) * 2654435761 % 2**62),
            "data": data,
            "message": message,
        }
        self._open_queries[query_id] = query
        self._enqueue("callback_query", query)
        return query

    def _membership_update(self, user_id: int, old: str, new: str) -> None:
        chat = self._chats.get(user_id)
        if chat is None:
            return
        status = {"user": self._bot_json(), "until_date": 0}
        self._enqueue(
            "my_chat_member",
            {
                "chat": chat.json,
                "from": self._users[user_id].json,
                "date": int(time.time()),
                "old_chat_member": {**status, "status": old},
                "new_chat_member": {**status, "status": new},
            },
        )

    # --- HTTP ---

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/file/bot"):
            token, _, file_path = path.removeprefix("/file/bot").partition("/")
            found = [i for i, f in self._file_info.items() if f["file_path"] == file_path]
            if token != self.token or not found:
                return web.json_response(ApiError(404, "Not Found").json(), status=404)
            return web.Response(body=self.files[found[0]].data)
        if not path.startswith("/bot") or path.count("/") != 2:
            return web.json_response(ApiError(404, "Not Found").json(), status=404)
        token, _, method = path.removeprefix("/bot").partition("/")
        if self.call_delay and method.lower() != "getupdates":
            await asyncio.sleep(self.call_delay / 2)
        call = Call(method=method, params={}, at=time.monotonic())
        self.calls.append(call)
        try:
            result = await self._api(request, token, method, call)
        except ApiError as error:
            call.status, call.description = error.code, error.description
            self._pulse()
            return web.json_response(error.json(), status=error.code)
        finally:
            if self.call_delay and method.lower() != "getupdates":
                await asyncio.sleep(self.call_delay / 2)
        call.status = 200
        self._pulse()  # whoever waits for a call's outcome looks again
        if isinstance(result, _Described):
            body = {"ok": True, "result": result.result, "description": result.description}
            return web.json_response(body)
        return web.json_response({"ok": True, "result": result})

    async def _api(self, request: web.Request, token: str, method: str, call: Call) -> Any:
        if token != self.token or self._logged_out:
            raise ApiError(401, "Unauthorized")
        handler = self._methods.get(method.lower())
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        params = await Params.read(request)
        call.params = {**params.values, **params.files}
        with contextlib.suppress(ApiError):
            call.chat_id = params.integer("chat_id")
        if call.is_message:
            self._check_flood(call)
        return await handler(params)

    def _check_flood(self, call: Call) -> None:
        """Answer 429 inside a running retry_after window, or when a test injected one."""
        now = time.monotonic()
        if now < self._flood_until:
            call.in_flood_window = True
            raise flood_error(self._flood_until - now)
        if self._injected:
            retry_after = self._injected.pop(0)
            self._flood_until = now + retry_after
            raise flood_error(retry_after)

    def _spend(self, chat: _Chat) -> None:
        """Count one message against the limits, or answer 429 and open a window."""
        now = time.monotonic()
        chat_limit = self.limits.group_chat if chat.is_group else self.limits.private_chat
        checks = [(self._sent_at, self.limits.overall), (chat.sent_at, chat_limit)]
        for times, limit in checks:
            if limit is None:
                continue
            times[:] = [t for t in times if t > now - limit.seconds]
            if len(times) >= limit.count:
                error = flood_error(times[-limit.count] + limit.seconds - now)
                assert error.retry_after is not None
                self._flood_until = now + error.retry_after
                raise error
        for times, _ in checks:
            times.append(now)

    def _target_chat(self, params: Params) -> _Chat:
        chat = self._chats.get(params.chat_id())
        if chat is None:
            raise ApiError(400, CHAT_NOT_FOUND)
        if chat.json["id"] in self._blocked:
            raise ApiError(403, BLOCKED)
        return chat

    def _formatted(self, params: Params, name: str, entities_name: str) -> _Content:
        """Parse a text or caption as Telegram does: HTML, explicit entities or plain."""
        source = params.text(name)
        mode = params.text("parse_mode").lower()
        if mode == "html":
            try:
                text, entities = parse_html(source)
            except HtmlError as error:
                raise ApiError(400, f"{CANT_PARSE}{error}") from None
        elif mode in {"markdown", "markdownv2"}:
            raise ApiError(400, f"Bad Request: the test peer does not implement {mode}")
        elif mode:
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        else:
            text = source
            entities = _given_entities(params.obj(entities_name, "entities"), source)
        text, entities = trim(text, entities)
        return _Content(text, source if mode == "html" else None, tuple(entities))

    def _reply_to(self, chat: _Chat, params: Params) -> Json | None:
        message_id = params.integer("reply_to_message_id")
        allow = params.flag("allow_sending_without_reply")
        reply = params.obj("reply_parameters", "reply parameters")
        if reply is not None:
            if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
                raise ApiError(400, "Bad Request: can't parse reply parameters JSON object")
            message_id = reply["message_id"]
            allow = bool(reply.get("allow_sending_without_reply", allow))
            if reply.get("chat_id", chat.json["id"]) != chat.json["id"]:
                message_id = 0
        if message_id is None:
            return None
        target = chat.messages.get(message_id)
        if target is None:
            if allow:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return {k: v for k, v in target.items() if k != "reply_to_message"}

    def _bot_message(self, chat: _Chat, params: Params, fields: Json, content: _Content) -> Json:
        """Store a message the bot sent, with the keyboard and reply the params ask for."""
        markup, buttons = inline_keyboard(
            params.obj("reply_markup", "reply keyboard markup"), inline_only=False
        )
        reply = self._reply_to(chat, params)
        self._spend(chat)
        if markup is not None:
            fields["reply_markup"] = markup
        if reply is not None:
            fields["reply_to_message"] = reply
        message = self._new_message(chat, self._bot_json(), fields)
        view = BotMessage(
            chat_id=chat.json["id"],
            message_id=message["message_id"],
            text=content.text,
            html=content.html,
            entities=content.entities,
            buttons=buttons,
            document=content.document,
            photo=content.photo,
            edited=False,
            seq=0,
            raw=message,
        )
        self._record_view(view)
        return message

    def _editable(self, params: Params) -> tuple[_Chat, BotMessage]:
        if params.values.get("inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")
        chat = self._target_chat(params)
        message_id = params.integer("message_id")
        if message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        if message_id not in chat.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        view = chat.views.get(message_id)
        if view is None:
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, view

    def _edit(self, chat: _Chat, view: BotMessage, changes: Json, **fields: Any) -> Json:
        message = {**view.raw, **changes, "edit_date": int(time.time())}
        message = {k: v for k, v in message.items() if v is not None}
        chat.messages[view.message_id] = message
        self._record_view(dataclasses.replace(view, raw=message, edited=True, **fields))
        return message

    def _input_file(self, params: Params, name: str, limit: int) -> File:
        value = params.text(name)
        upload = params.files.get(name)
        if upload is None and value.startswith("attach://"):
            upload = params.files.get(value.removeprefix("attach://"))
        if upload is None and value in self.files:
            upload = self.files[value]
        if upload is None:
            if value:
                raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
            raise ApiError(400, f"Bad Request: there is no {name} in the request")
        if not upload.data:
            raise ApiError(400, "Bad Request: file must be non-empty")
        if len(upload.data) > limit:
            raise ApiError(413, "Request Entity Too Large")
        return upload

    def _store_file(self, upload: File, folder: str) -> Json:
        """Give an upload a file_id (the same one again for the same file) and a path."""
        file_id = self._file_ids.get(upload)
        if file_id is None:
            number = next(self._ids)
            file_id = f"BQACAgIAAxk{number:012d}{self.bot_id}"
            self._file_ids[upload] = file_id
            self.files[file_id] = upload
            suffix = "." + upload.filename.rpartition(".")[2] if "." in upload.filename else ""
            self._file_info[file_id] = {
                "file_id": file_id,
                "file_unique_id": f"AgAD{number:08d}",
                "file_size": len(upload.data),
                "file_path": f"{folder}/file_{number}{suffix}",
            }
        return {k: v for k, v in self._file_info[file_id].items() if k != "file_path"}

    def _caption(self, params: Params) -> tuple[Json, _Content]:
        content = self._formatted(params, "caption", "caption_entities")
        if utf16_len(content.text) > MAX_CAPTION:
            raise ApiError(400, CAPTION_TOO_LONG)
        fields: Json = {}
        if content.text:
            fields["caption"] = content.text
        if content.entities:
            fields["caption_entities"] = [e.json() for e in content.entities]
        return fields, content

    def _message_text(self, params: Params) -> _Content:
        content = self._formatted(params, "text", "entities")
        if not content.text:
            raise ApiError(400, TEXT_EMPTY)
        if utf16_len(content.text) > MAX_TEXT:
            raise ApiError(400, TEXT_TOO_LONG)
        return content

    # --- Bot API methods ---

    async def _get_me(self, params: Params) -> Json:
        return {
            **self._bot_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, params: Params) -> list[Json]:
        if self._webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = params.integer("offset") or 0
        limit = min(100, max(1, params.integer("limit") or 100))
        timeout = max(0.0, params.number("timeout", 0))
        allowed = params.obj("allowed_updates", "allowed updates")
        if isinstance(allowed, list):
            self._allowed = frozenset(allowed) or None
        if offset < 0:
            del self._pending[: max(0, len(self._pending) + offset)]
        else:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        self._poll_generation += 1
        generation = self._poll_generation
        self._pulse()  # an older long poll ends with a conflict
        if timeout > 0:
            self._long_polls += 1
            self._pulse()
            try:
                await self._wait_until(
                    lambda: (
                        bool(self._pending)
                        or generation != self._poll_generation
                        or self._webhook is not None
                    ),
                    timeout,
                )
            finally:
                self._long_polls -= 1
        if generation != self._poll_generation:
            raise ApiError(409, POLL_CONFLICT)
        if self._webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        return self._pending[:limit]

    async def _set_webhook(self, params: Params) -> _Described:
        url = params.text("url")
        if not url:
            return await self._delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ApiError(400, "Bad Request: bad webhook: invalid webhook URL specified")
        secret = params.text("secret_token")
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = params.integer("max_connections") or 40
        if not 1 <= max_connections <= 100:
            raise ApiError(400, "Bad Request: bad webhook: max_connections must be 1-100")
        allowed = params.obj("allowed_updates", "allowed updates")
        if isinstance(allowed, list):
            self._allowed = frozenset(allowed) or None
        if params.flag("drop_pending_updates"):
            self._pending.clear()
        self._webhook = _Webhook(url, secret, max_connections, params.text("ip_address"))
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver(), name="webhook delivery")
        self._pulse()
        return _Described(True, "Webhook was set")

    async def _delete_webhook(self, params: Params) -> _Described:
        if params.flag("drop_pending_updates"):
            self._pending.clear()
        was_set = self._webhook is not None
        self._webhook = None
        await self._stop_webhook_delivery()
        return _Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _get_webhook_info(self, params: Params) -> Json:
        info: Json = {
            "url": self._webhook.url if self._webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._pending),
        }
        if self._webhook is not None:
            info["max_connections"] = self._webhook.max_connections
            if self._webhook.ip_address:
                info["ip_address"] = self._webhook.ip_address
            if self._webhook.last_error_date is not None:
                info["last_error_date"] = self._webhook.last_error_date
                info["last_error_message"] = self._webhook.last_error_message
        if self._allowed:
            info["allowed_updates"] = sorted(self._allowed)
        return info

    async def _send_message(self, params: Params) -> Json:
        chat = self._target_chat(params)
        content = self._message_text(params)
        fields: Json = {"text": content.text}
        if content.entities:
            fields["entities"] = [e.json() for e in content.entities]
        preview = params.obj("link_preview_options", "link preview options")
        if preview is not None:
            if not isinstance(preview, dict):
                raise ApiError(400, "Bad Request: can't parse link preview options JSON object")
            fields["link_preview_options"] = preview
        return self._bot_message(chat, params, fields, content)

    async def _edit_message_text(self, params: Params) -> Json:
        chat, view = self._editable(params)
        if view.document is not None or view.photo is not None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        content = self._message_text(params)
        markup, buttons = inline_keyboard(
            params.obj("reply_markup", "reply keyboard markup"), inline_only=True
        )
        same_text = (content.text, content.entities) == (view.text, view.entities)
        if same_text and markup == view.raw.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        self._spend(chat)
        changes = {
            "text": content.text,
            "entities": [e.json() for e in content.entities] or None,
            "reply_markup": markup,
        }
        return self._edit(
            chat,
            view,
            changes,
            text=content.text,
            html=content.html,
            entities=content.entities,
            buttons=buttons,
        )

    async def _edit_message_reply_markup(self, params: Params) -> Json:
        chat, view = self._editable(params)
        markup, buttons = inline_keyboard(
            params.obj("reply_markup", "reply keyboard markup"), inline_only=True
        )
        if markup == view.raw.get("reply_markup"):
            raise ApiError(400, NOT_MODIFIED)
        return self._edit(chat, view, {"reply_markup": markup}, buttons=buttons)

    async def _answer_callback_query(self, params: Params) -> bool:
        query = self._open_queries.get(params.text("callback_query_id"))
        if query is None:
            raise ApiError(400, QUERY_TOO_OLD)
        text = params.text("text")
        if utf16_len(text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        del self._open_queries[query["id"]]
        url = params.text("url") or None
        self.answered_callbacks.append(
            AnsweredCallback(
                query["id"],
                query["from"]["id"],
                query["data"],
                text,
                params.flag("show_alert"),
                url,
            )
        )
        return True

    async def _send_document(self, params: Params) -> Json:
        chat = self._target_chat(params)
        upload = self._input_file(params, "document", MAX_UPLOAD)
        fields, content = self._caption(params)
        stored = self._store_file(upload, "documents")
        fields["document"] = {
            **stored,
            "file_name": upload.filename,
            "mime_type": upload.mime_type,
        }
        content = dataclasses.replace(content, document=upload)
        return self._bot_message(chat, params, fields, content)

    async def _send_photo(self, params: Params) -> Json:
        chat = self._target_chat(params)
        upload = self._input_file(params, "photo", MAX_PHOTO)
        size = image_size(upload.data)
        if size is None:
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
        width, height = size
        if not width or not height or width + height > 10000 or max(size) > 20 * min(size):
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        fields, content = self._caption(params)
        stored = self._store_file(upload, "photos")
        fields["photo"] = [{**stored, "width": width, "height": height}]
        content = dataclasses.replace(content, photo=upload)
        return self._bot_message(chat, params, fields, content)

    async def _send_chat_action(self, params: Params) -> bool:
        self._target_chat(params)
        if params.text("action") not in CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    def _command_key(self, params: Params) -> tuple[str, str]:
        scope = params.obj("scope", "BotCommandScope") or {"type": "default"}
        if not isinstance(scope, dict) or scope.get("type") not in COMMAND_SCOPES:
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        if scope["type"] in {"chat", "chat_administrators", "chat_member"}:
            chat_id = scope.get("chat_id")
            if not isinstance(chat_id, int) or chat_id not in self._chats:
                raise ApiError(400, CHAT_NOT_FOUND)
        if scope["type"] == "chat_member" and not isinstance(scope.get("user_id"), int):
            raise ApiError(400, "Bad Request: can't parse BotCommandScope JSON object")
        language = params.text("language_code")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return json.dumps(scope, sort_keys=True), language

    async def _set_my_commands(self, params: Params) -> bool:
        commands = params.obj("commands", "commands")
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        for command in commands:
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not description.strip():
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
            if len(description) > 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = self._command_key(params)
        self._commands[key] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: Params) -> list[Json]:
        return list(self._commands.get(self._command_key(params), []))

    async def _delete_my_commands(self, params: Params) -> bool:
        self._commands.pop(self._command_key(params), None)
        return True

    async def _get_file(self, params: Params) -> Json:
        info = self._file_info.get(params.text("file_id"))
        if info is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        return info

    async def _close(self, params: Params) -> bool:
        running = time.monotonic() - self._started_at
        if running < self.close_lockout:
            raise flood_error(self.close_lockout - running)
        return True

    async def _log_out(self, params: Params) -> bool:
        self._logged_out = True
        return True

    # --- webhook delivery ---

    async def _stop_webhook_delivery(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _deliver(self) -> None:
        """POST pending updates to the webhook one by one, in order, retrying failures."""
        failures = 0
        while not self._stopping:
            ready = await self._wait_until(
                lambda: bool(self._pending) and self._webhook is not None, None
            )
            hook = self._webhook
            if not ready or hook is None or self._session is None:
                continue
            update = self._pending[0]
            error = await self._post_update(hook, update)
            if error is None:
                failures = 0
                if self._pending and self._pending[0] is update:
                    self._pending.pop(0)
                    self._pulse()
                continue
            failures += 1
            hook.last_error_date, hook.last_error_message = int(time.time()), error
            delay = min(
                self.webhook_max_retry_delay, self.webhook_retry_delay * 2 ** (failures - 1)
            )
            await self._pause_unless_replaced(hook, delay)

    async def _pause_unless_replaced(self, hook: _Webhook, seconds: float) -> None:
        await self._wait_until(lambda: self._webhook is not hook, seconds)

    async def _post_update(self, hook: _Webhook, update: Json) -> str | None:
        """POST one update; return Telegram's last_error_message on failure."""
        assert self._session is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": hook.secret} if hook.secret else {}
        timeout = aiohttp.ClientTimeout(total=self.webhook_timeout)
        try:
            async with self._session.post(
                hook.url, json=update, headers=headers, timeout=timeout
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except (aiohttp.ClientError, OSError) as error:
            return f"Connection failed: {error}"
        except Exception as error:  # the peer must survive anything a bot does
            logger.exception("webhook delivery failed")
            return f"Delivery failed: {error}"


_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/@])")
_MENTION = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}(?!\w)")


def _callback_data(message: Json, button: str | int | None) -> str:
    """Return the callback data of a message's button, chosen by text or flat index."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    flat: list[Json] = [b for row in rows for b in row]
    chosen = [b for i, b in enumerate(flat) if button in (b["text"], i)]
    if not chosen:
        raise LookupError(f"no button {button!r} on message {message['message_id']}")
    if "callback_data" not in chosen[0]:
        raise ValueError(f"button {button!r} opens a URL; it sends no callback query")
    data: str = chosen[0]["callback_data"]
    return data


def _detected_entities(text: str) -> list[Entity]:
    """Find commands and mentions the way Telegram marks them in user messages."""
    found = [
        Entity(kind, utf16_len(text[: m.start()]), utf16_len(m.group()))
        for kind, pattern in (("bot_command", _COMMAND), ("mention", _MENTION))
        for m in pattern.finditer(text)
    ]
    return sorted(found, key=lambda e: e.offset)
