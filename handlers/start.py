"""Welcome and help: what this person can do here."""

from __future__ import annotations

from markupsafe import Markup

from bot.core import Reply, Request, Role
from bot.i18n import N_, _
from bot.markup import blocks, bold, code, lines
from bot.routing import Context, Router

router = Router("start")
ROLE_NAMES = {
    Role.MEMBER: N_("member"),
    Role.PARTNER: N_("partner representative"),
    Role.COORDINATOR: N_("coordinator"),
}


@router.command("start", help=N_("welcome"), usage=N_("/start"), group=False)
async def welcome(request: Request, ctx: Context) -> Reply:
    """Greet the member and show what they can do."""
    greeting = _("Welcome to the assistant of {network}!").format(network=ctx.network)
    about = _(
        "Here you find the network's meetings and the CO2-saving experience of its partners."
    )
    return Reply(blocks([bold(greeting), about, _command_list(ctx)]))


@router.command(
    "help", help=N_("the commands you can use"), usage=N_("/help"), names={"de": "hilfe"}
)
async def show_help(request: Request, ctx: Context) -> Reply:
    """List the commands this member may use, one line each."""
    return Reply(_command_list(ctx))


def _command_list(ctx: Context) -> Markup:
    role = _("You are a {role}.").format(role=_(ROLE_NAMES[ctx.role]))
    entries = [
        Markup("{} – {}").format(code(command.usage_line()), _(command.help))
        for command in ctx.commands
        if command.name != "start"
    ]
    return lines([bold(_("What I can do")), *entries, "", role])
