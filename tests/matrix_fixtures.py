"""Pytest fixtures for a real Synapse homeserver and its members; import them in a conftest.py."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.matrix_member import MatrixMember
from tests.synapse import MatrixAccount, Synapse

MakeAccount = Callable[..., Awaitable[MatrixAccount]]
MakeMember = Callable[..., Awaitable[MatrixMember]]


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """One homeserver for the whole test session, with the rate limits raised."""
    # Synchronous on purpose: no event loop outlives a test, and every test may use it.
    # A failure to install or start is an error of every test that asks, never a skip.
    server = Synapse.launch(tmp_path_factory.mktemp("synapse"))
    yield server
    server.terminate()


@pytest.fixture(scope="session")
def synapse_default_limits(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    """A second homeserver, started on first use, that keeps Synapse's default rc_message."""
    server = Synapse.launch(
        tmp_path_factory.mktemp("synapse-default-limits"), default_message_rate_limit=True
    )
    yield server
    server.terminate()


@pytest.fixture
def make_matrix_account(synapse: Synapse) -> MakeAccount:
    """Register a fresh user on the session's homeserver: `await make_matrix_account("bot")`."""

    async def make(prefix: str = "user", *, admin: bool = False) -> MatrixAccount:
        username = f"{prefix}-{secrets.token_hex(4)}"
        password = secrets.token_urlsafe(12)
        user_id, token, device_id = await synapse.register(username, password, admin=admin)
        return MatrixAccount(user_id, username, password, token, device_id)

    return make


@pytest.fixture
async def account(make_matrix_account: MakeAccount) -> MatrixAccount:
    """The bot's account on the homeserver."""
    return await make_matrix_account("klimabot")


@pytest.fixture
async def make_matrix_member(synapse: Synapse) -> AsyncIterator[MakeMember]:
    """Log in a fresh syncing member, `await make_matrix_member("anna")`; closed after the test."""
    members: list[MatrixMember] = []

    async def make(prefix: str = "member", *, sync: bool = True) -> MatrixMember:
        member = await MatrixMember.login(synapse, f"{prefix}-{secrets.token_hex(4)}", sync=sync)
        members.append(member)
        return member

    yield make
    for member in members:
        await member.close()
