"""Telegram's inbound parsing and outbound rendering, without a network."""

import pytest

from bot.core import Button, parse_action
from bot.transports.telegram import (
    CALLBACK_DATA_LIMIT,
    TelegramSettings,
    TelegramTransport,
    _file_url,
    _parse_command,
)


async def no_reply(_request: object) -> None:
    return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/meetings", ("meetings", "", False)),
        ("/Meetings@KlimaTestBot  #2 ", ("meetings", "#2", True)),
        ("/tips\nWärme pumpe", ("tips", "Wärme pumpe", False)),
        ("/meetings@OtherBot", (None, "", False)),
        ("/", (None, "", False)),
        ("hallo /meetings", (None, "", False)),
    ],
)
def test_commands_addressed_to_this_bot_or_none(
    text: str, expected: tuple[str | None, str, bool]
) -> None:
    assert _parse_command(text, "KlimaTestBot") == expected


def test_file_url_follows_the_api_url() -> None:
    assert _file_url("https://api.telegram.org/bot") == "https://api.telegram.org/file/bot"
    assert _file_url("http://127.0.0.1:8081/bot/") == "http://127.0.0.1:8081/file/bot"


def test_long_button_actions_travel_as_short_keys() -> None:
    transport = TelegramTransport(no_reply, TelegramSettings(token="1:x"))
    short = Button("Weiter", "tips", "Wärmepumpe #2")
    assert transport._data(short) == "tips:Wärmepumpe:#2"
    long = Button("Weiter", "tips", "Wärmepumpe Photovoltaik Druckluftleckagen Abwärmenutzung #2")
    key = transport._data(long)
    assert len(key.encode()) <= CALLBACK_DATA_LIMIT
    assert parse_action(transport._long_actions[key]) == (
        "tips",
        "Wärmepumpe Photovoltaik Druckluftleckagen Abwärmenutzung #2",
    )
    assert transport._data(long) == key
