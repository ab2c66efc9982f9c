"""The Telegram transport: python-telegram-bot embedded in the shared event loop."""

from __future__ import annotations

import contextlib
import logging
import os
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScope,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Application, ApplicationBuilder, ContextTypes, TypeHandler
from telegram.request import RequestData

from bot.core import (
    Button,
    ChatId,
    MessageRef,
    Platform,
    RateLimited,
    Recipient,
    Rejected,
    Reply,
    Request,
    Sender,
    Unreachable,
    UserId,
    parse_action,
)
from bot.i18n import _
from bot.markup import split_markup, to_plain, utf16_length
from bot.transports import RequestHandler
from bot.transports.ordering import InOrder
from bot.transports.reconnect import Backoff, CannotServe, Outage, keep_trying
from bot.transports.telegram_http import AiohttpRequest
from bot.transports.telegram_pacing import Limits, Priority, SendPacer, retry_seconds

logger = logging.getLogger(__name__)

TEXT_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
ALERT_LIMIT = 200
UPDATES = ["message", "edited_message", "callback_query"]
# Telegram's stand-in sender for anonymous group admins: no person to answer.
ANONYMOUS_ADMIN = 1087968824
UPDATER_LOG = "telegram.ext.Updater"


@dataclass(frozen=True, slots=True)
class Menu:
    """The command menu for one scope and language: ``private``, ``group`` or a chat id."""

    scope: Literal["private", "group"] | int
    language: str | None
    commands: Sequence[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class TelegramSettings:
    """How to reach the Bot API and how updates arrive."""

    token: str
    base_url: str = "https://api.telegram.org/bot"
    mode: Literal["polling", "webhook"] = "polling"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    listen: str = "127.0.0.1"
    port: int = 8443
    poll_timeout: int = 10
    concurrent_updates: int = 64
    # Waits between attempts to reach the Bot API at start.
    backoff: Backoff = field(default_factory=Backoff)


class TelegramTransport:
    """Serve members on Telegram: private chats and the network's groups."""

    platform = Platform.TELEGRAM

    def __init__(
        self,
        handle: RequestHandler,
        settings: TelegramSettings,
        *,
        menus: Sequence[Menu] = (),
        group_commands: frozenset[str] = frozenset(),
        unreachable: Callable[[Recipient], Awaitable[None]] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.handle = handle
        self.settings = settings
        self.menus = menus
        self.group_commands = group_commands
        self.unreachable = unreachable
        self.limits = limits
        self.username = ""
        self._long_actions: OrderedDict[str, str] = OrderedDict()
        self._waiting_menus: dict[int, list[Menu]] = {}
        self._app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.pacer = SendPacer(limits)
        self._in_order = InOrder()
        self._outage = Outage("Telegram", _server(settings.base_url), settings.backoff)
        self._polling = WatchedRequest(self._outage, 1)

    # Lifecycle

    async def start(self) -> None:
        """Connect to the Bot API, set the command menus and begin receiving updates.

        While the Bot API does not answer, try again with growing waits; return once serving.
        """
        app = self._build()
        self._app = app
        try:
            await keep_trying(lambda: self._connect(app), self._outage, _transient)
            await app.start()
        except InvalidToken as error:
            await self.stop()
            raise CannotServe(
                _("Telegram refuses the bot's token (KLIMABOT_TELEGRAM_TOKEN).")
            ) from error
        except BaseException:
            await self.stop()
            raise
        logger.info("Telegram: serving as @%s (%s)", self.username, self.settings.mode)

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        settings = self.settings
        # Opt in to what python-telegram-bot 23 does anyway: durations such as retry_after as
        # timedelta, without a deprecation warning each time Telegram answers 429. The
        # library reads it from the environment; it has no option for it.
        os.environ.setdefault("PTB_TIMEDELTA", "1")
        app = (
            ApplicationBuilder()
            .token(settings.token)
            .base_url(settings.base_url)
            .base_file_url(_file_url(settings.base_url))
            .rate_limiter(self.pacer)
            .concurrent_updates(settings.concurrent_updates)
            # A few kept-alive connections serve a burst better than many short-lived ones;
            # replies queue for them a while instead of failing after a second.
            .request(WatchedRequest(self._outage, 8, pool_timeout=30.0))
            .get_updates_request(self._polling)
            .build()
        )
        app.add_handler(TypeHandler(Update, self._on_update))
        app.add_error_handler(self._on_error)
        return app

    async def _connect(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        # Every step asks the Bot API; a failed attempt is repeated from the start.
        settings = self.settings
        # Asked directly first: the send pacer would retry a Bot API that does not answer for
        # seconds before the operator hears of it.
        await self._polling.initialize()
        await self._polling.post(f"{settings.base_url}{settings.token}/getMe")
        await app.initialize()
        self.username = app.bot.username or ""
        await self._set_menus()
        assert app.updater is not None
        if settings.mode == "webhook":
            await app.updater.start_webhook(
                listen=settings.listen,
                port=settings.port,
                url_path=urlsplit(settings.webhook_url or "").path.lstrip("/"),
                webhook_url=settings.webhook_url,
                secret_token=settings.webhook_secret,
                allowed_updates=UPDATES,
            )
        else:
            # python-telegram-bot retries a failed poll by itself (waits growing to 30 s);
            # WatchedRequest tells the operator when the Bot API goes and comes back.
            await app.updater.start_polling(
                timeout=settings.poll_timeout,
                allowed_updates=UPDATES,
                error_callback=_polling_failed,
            )

    async def stop(self) -> None:
        """Stop receiving, finish the updates in hand, and disconnect."""
        app = self._app
        if app is None:
            return
        if app.updater is not None and app.updater.running:
            with _quiet(UPDATER_LOG, self._outage.down):
                # Its last poll, which confirms the updates in hand, cannot reach a Bot API
                # that is down; the updates come again after the next start.
                await app.updater.stop()
        if app.running:
            await app.stop()  # the updates in hand are answered meanwhile
        self._app = None
        await app.shutdown()
        await app.bot.shutdown()  # also when initialize() never got through
        await self._polling.shutdown()

    # Inbound

    async def _on_update(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        async with self._in_order.turn(chat.id if chat is not None else None):
            if update.callback_query is not None:
                await self._on_button(update.callback_query)
            elif (message := update.message or update.edited_message) is not None:
                await self._on_message(message)

    async def _on_message(self, message: Message) -> None:
        user, text = message.from_user, message.text or ""
        if user is None or user.id == ANONYMOUS_ADMIN or message.sender_chat is not None:
            return
        group = message.chat.type != "private"
        if not group and user.id in self._waiting_menus:
            await self._set_menus(self._waiting_menus.pop(user.id))
        command, args, addressed = _parse_command(text, self.username)
        if command is None:
            if group:
                return
            command, args = "", text
        elif group and not (addressed or command in self.group_commands):
            return
        request = Request(
            Platform.TELEGRAM,
            ChatId(str(message.chat.id)),
            Sender(UserId(str(user.id)), user.full_name, user.language_code),
            command,
            args,
            is_group=group,
        )
        reply = await self.handle(request)
        if reply is None:
            return
        if group and reply.is_error:
            # Meant for one person: tell them privately if they ever talked to the bot.
            await self._deliver(message.chat.id, reply, private_to=user.id)
            return
        await self._deliver(message.chat.id, reply, reply_to=message.message_id if group else None)

    async def _on_button(self, query: CallbackQuery) -> None:
        message = query.message
        chat = message.chat if message is not None else None
        command, args = parse_action(self._long_actions.get(query.data or "", query.data or ""))
        request = Request(
            Platform.TELEGRAM,
            ChatId(str(chat.id if chat else query.from_user.id)),
            Sender(
                UserId(str(query.from_user.id)),
                query.from_user.full_name,
                query.from_user.language_code,
            ),
            command,
            args,
            is_group=chat is not None and chat.type != "private",
            via_button=True,
            origin=MessageRef(f"{chat.id}:{message.message_id}") if chat and message else None,
        )
        reply = await self.handle(request)
        if reply is None or reply.is_error:
            notice = to_plain(reply.text)[:ALERT_LIMIT] if reply else None
            await query.answer(notice, show_alert=bool(notice))
            return
        await query.answer()
        if reply.edit_origin and isinstance(message, Message) and not reply.attachments:
            await self._edit(message, reply)
        elif chat is not None:
            await self._deliver(chat.id, reply)

    # Outbound

    def hold(self, seconds: float) -> None:
        """Send nothing for a while, as Telegram asked before the bot restarted."""
        self.pacer.pause(seconds)

    async def send(self, recipient: Recipient, reply: Reply, *, key: str) -> MessageRef:
        """Push a message to one chat, e.g. an announcement; pushes yield to replies.

        Telegram has no idempotency key: a send that timed out may have arrived.
        """
        try:
            sent = await self._send(int(recipient.chat_id), reply, pacing=Priority.PUSH)
        except Forbidden as error:
            raise Unreachable(error.message) from error
        except RetryAfter as error:
            raise RateLimited(retry_seconds(error)) from error
        except BadRequest as error:
            if "chat not found" in error.message.lower():
                raise Unreachable(error.message) from error
            raise Rejected(error.message) from error
        return MessageRef(f"{sent.chat_id}:{sent.message_id}")

    async def edit(self, recipient: Recipient, message: MessageRef, reply: Reply) -> None:
        """Replace a message the bot sent, such as a broadcast's progress."""
        chat_id, _, message_id = message.rpartition(":")
        text = split_markup(reply.text, TEXT_LIMIT, utf16_length)[0]
        try:
            await self._bot().edit_message_text(
                str(text),
                chat_id=int(chat_id or recipient.chat_id),
                message_id=int(message_id),
                parse_mode=ParseMode.HTML,
                reply_markup=self._keyboard(reply.buttons),
                disable_web_page_preview=True,
            )
        except BadRequest as error:
            if "not modified" not in error.message.lower():
                raise

    async def _deliver(
        self,
        chat_id: int,
        reply: Reply,
        *,
        reply_to: int | None = None,
        private_to: int | None = None,
    ) -> None:
        target = private_to or chat_id
        try:
            await self._send(target, reply, reply_to=reply_to)
        except Forbidden:
            logger.info("Telegram: chat %s does not accept messages from the bot", target)
            if self.unreachable is not None:
                await self.unreachable(Recipient(Platform.TELEGRAM, ChatId(str(target))))
        except BadRequest as error:
            if private_to is None:
                raise
            logger.debug("Telegram: no private chat with %s (%s)", private_to, error)

    async def _send(
        self,
        target: int,
        reply: Reply,
        *,
        reply_to: int | None = None,
        pacing: Priority | None = None,
    ) -> Message:
        """Send a reply's parts, buttons on the last; return the last text message."""
        bot = self._bot()
        parts = split_markup(reply.text, TEXT_LIMIT, utf16_length)
        sent: Message | None = None
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            sent = await bot.send_message(
                target,
                str(part),
                parse_mode=ParseMode.HTML,
                reply_markup=self._keyboard(reply.buttons) if last else None,
                reply_to_message_id=reply_to if index == 0 else None,
                disable_web_page_preview=True,
                rate_limit_args=pacing,
            )
        for attachment in reply.attachments:
            if attachment.mime_type.startswith("image/"):
                await bot.send_photo(
                    target, attachment.data, filename=attachment.filename, rate_limit_args=pacing
                )
            else:
                await bot.send_document(
                    target, attachment.data, filename=attachment.filename, rate_limit_args=pacing
                )
        assert sent is not None
        return sent

    async def _edit(self, message: Message, reply: Reply) -> None:
        text = split_markup(reply.text, TEXT_LIMIT, utf16_length)[0]
        try:
            await message.edit_text(
                str(text),
                parse_mode=ParseMode.HTML,
                reply_markup=self._keyboard(reply.buttons),
                disable_web_page_preview=True,
            )
        except BadRequest as error:
            if "not modified" not in str(error).lower():
                raise

    def _keyboard(self, rows: tuple[tuple[Button, ...], ...]) -> InlineKeyboardMarkup | None:
        if not rows:
            return None
        return InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton(button.label, callback_data=self._data(button))
                    for button in row
                ]
                for row in rows
            ]
        )

    def _data(self, button: Button) -> str:
        action = button.action
        if len(action.encode()) <= CALLBACK_DATA_LIMIT:
            return action
        # Too long for Telegram (a long search): keep it here and send a short key.
        key = f"~{abs(hash(action)) % 10**12:012d}"
        self._long_actions[key] = action
        self._long_actions.move_to_end(key)
        while len(self._long_actions) > 10_000:
            self._long_actions.popitem(last=False)
        return key

    async def _set_menus(self, menus: Sequence[Menu] | None = None) -> None:
        bot = self._bot()
        if menus is None:
            self._waiting_menus.clear()
        for menu in self.menus if menus is None else menus:
            scope: BotCommandScope
            if menu.scope == "private":
                scope = BotCommandScopeAllPrivateChats()
            elif menu.scope == "group":
                scope = BotCommandScopeAllGroupChats()
            else:
                scope = BotCommandScopeChat(menu.scope)
            commands = [BotCommand(name, text[:256]) for name, text in menu.commands]
            try:
                await bot.set_my_commands(commands, scope, menu.language)
            except BadRequest:
                if isinstance(menu.scope, str):
                    raise
                # A coordinator who never wrote to the bot has no chat yet: set their menu
                # when they first do.
                logger.info("Telegram: menu for %s waits for their first message", menu.scope)
                self._waiting_menus.setdefault(menu.scope, []).append(menu)

    def _bot(self) -> Any:
        if self._app is None:
            raise RuntimeError("the Telegram transport is not running")
        return self._app.bot

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        if isinstance(context.error, NetworkError) and not isinstance(context.error, BadRequest):
            # The Bot API went away while answering: told once, not a traceback per update.
            self._outage.failed(context.error)
            return
        logger.error("Telegram: update failed", exc_info=context.error)


class WatchedRequest(AiohttpRequest):
    """Bot API requests that notice when the Bot API stops and starts answering."""

    __slots__ = ("_outage",)

    def __init__(self, outage: Outage, connection_pool_size: int, **timeouts: float) -> None:
        super().__init__(connection_pool_size, **timeouts)
        self._outage = outage

    async def do_request(  # noqa: PLR0917 (the signature is BaseRequest's)
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = AiohttpRequest.DEFAULT_NONE,
        write_timeout: object = AiohttpRequest.DEFAULT_NONE,
        connect_timeout: object = AiohttpRequest.DEFAULT_NONE,
        pool_timeout: object = AiohttpRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """Send one request, noting whether the Bot API answered."""
        try:
            status, body = await super().do_request(
                url,
                method,
                request_data,
                read_timeout,
                write_timeout,
                connect_timeout,
                pool_timeout,
            )
        except NetworkError as error:
            self._outage.failed(error)
            raise
        if status >= 500:
            self._outage.failed(NetworkError(f"HTTP {status}"))
        else:
            self._outage.recovered()
        return status, body


def _transient(error: BaseException) -> bool:
    """Tell failures worth retrying (no connection, timeouts, 5xx, 429) from refusals."""
    network = isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    return network or isinstance(error, RetryAfter)


def _polling_failed(error: TelegramError) -> None:
    # Network failures are told by WatchedRequest, once per outage; anything else is news.
    if not _transient(error):
        logger.warning("Telegram: fetching updates failed: %s", error)


@contextlib.contextmanager
def _quiet(name: str, quiet: bool) -> Iterator[None]:
    """Silence a logger below CRITICAL for a while, if ``quiet``."""
    log = logging.getLogger(name)
    level = log.level
    if quiet:
        log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _server(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}"


def _parse_command(text: str, username: str) -> tuple[str | None, str, bool]:
    """Split ``/cmd@Bot args``: the command (None if none or for another bot), args, addressed."""
    words = text[1:].split(maxsplit=1) if text.startswith("/") else []
    if not words:
        return None, "", False
    name, _, target = words[0].partition("@")
    if not name or (target and target.lower() != username.lower()):
        return None, "", False
    return name.lower(), words[1].strip() if len(words) > 1 else "", bool(target)


def _file_url(base_url: str) -> str:
    # https://api.telegram.org/bot -> https://api.telegram.org/file/bot
    root = base_url.rstrip("/").removesuffix("bot")
    return f"{root}file/bot"
