"""A bare python-telegram-bot echo bot: the baseline that bench_telegram.py compares with."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from telegram import Update
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

READY = "echo bot ready"
# The same polling as Klimabot's transport: no pause between polls, 10 s long polls.
POLL_TIMEOUT = 10
CONCURRENT_UPDATES = 64


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Send the text of the message back to its chat."""
    message = update.effective_message
    if message is not None and message.text is not None:
        await context.bot.send_message(message.chat_id, message.text)


async def serve(base_url: str) -> None:
    """Poll for updates and echo them until SIGTERM or SIGINT."""
    app = (
        ApplicationBuilder()
        .token(os.environ["ECHO_BOT_TOKEN"])
        .base_url(base_url)
        .base_file_url(base_url.rstrip("/").removesuffix("bot") + "file/bot")
        .concurrent_updates(CONCURRENT_UPDATES)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, echo))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await app.initialize()
    try:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=POLL_TIMEOUT)
        print(READY, file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        if app.updater is not None and app.updater.running:
            await app.updater.stop()
        if app.running:
            await app.stop()
        await app.shutdown()


def main() -> None:
    """Run the echo bot against the Bot API at --base-url (token in ECHO_BOT_TOKEN)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-url", required=True, help="as ApplicationBuilder.base_url")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.base_url))


if __name__ == "__main__":
    main()
