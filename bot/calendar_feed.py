"""The private calendar feeds over HTTP: each member's meetings for their calendar app."""

from __future__ import annotations

import hashlib
import logging
import traceback
from urllib.parse import urlsplit

from aiohttp import web

from bot import i18n
from bot.dispatch import Dispatcher
from handlers.calendar import calendar_view, member_feed
from storage.calendar import member_by_feed_token

logger = logging.getLogger(__name__)

FEED_SUFFIX = ".ics"
# Apps ask every time whether the feed changed (the ETag makes the answer short), and no
# shared cache keeps a member's calendar. No Last-Modified: a feed also changes with the
# member's language and reminder offsets, which keep no time of change.
CACHE_CONTROL = "private, no-cache"


class CalendarFeed:
    """An HTTP server that answers a feed to whoever has its token, and 404 to anything else.

    The token is in the path; nothing here writes a path or a token into the log.
    """

    def __init__(self, dispatcher: Dispatcher, feed_url: str, listen: str, port: int) -> None:
        self.dispatcher = dispatcher
        self.path = urlsplit(feed_url).path
        self.listen = listen
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen for feed requests; raise OSError when the address cannot be used."""
        app = web.Application()
        app.router.add_route("*", self.path + "{name}", self._answer)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.listen, self.port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        logger.info("calendar feeds served on %s:%s", self.listen, self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if request.method not in ("GET", "HEAD") or not name.endswith(FEED_SUFFIX):
            return _not_found()
        try:
            body = await self._feed(name.removesuffix(FEED_SUFFIX))
        except Exception as error:
            # Where it failed, but not the error's text: a database error's text holds the
            # statement's parameters, and so a part of the token.
            trace = "".join(traceback.format_tb(error.__traceback__))
            logger.error("a calendar feed failed with %s:\n%s", type(error).__name__, trace)
            return web.Response(status=500)
        if body is None:
            return _not_found()
        etag = hashlib.sha256(body).hexdigest()[:32]
        if any(tag.value in (etag, "*") for tag in request.if_none_match or ()):
            response = web.Response(status=304)
        else:
            response = web.Response(body=body, content_type="text/calendar", charset="utf-8")
        response.etag = etag
        response.headers["Cache-Control"] = CACHE_CONTROL
        return response

    async def _feed(self, token: str) -> bytes | None:
        """Return the feed of the member with this token, in their language, or None."""
        dispatcher = self.dispatcher
        sessions = dispatcher.readers or dispatcher.sessions
        async with sessions() as session:
            member = await member_by_feed_token(session, token)
            if member is None:
                return None
            with i18n.using(dispatcher.localizer(member.language)):
                view = calendar_view(
                    member, dispatcher.reminder_offsets, dispatcher.meeting_length
                )
                return await member_feed(session, view, dispatcher.network, dispatcher.clock())


def _not_found() -> web.Response:
    # The same answer as for a path the server does not know: no hint what was wrong.
    return web.Response(status=404, text="404: Not Found")
