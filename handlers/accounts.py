"""One member, several platforms: linking a Telegram and a Matrix account."""

from __future__ import annotations

from markupsafe import Markup

from bot.core import Reply, Request, UserError
from bot.i18n import N_, _
from bot.markup import code, lines
from bot.routing import Context, Router
from storage.links import VALID_FOR, LinkRefused, create_link_code, redeem_link_code

router = Router("accounts")


@router.command(
    "link",
    help=N_("link your Telegram and Matrix accounts"),
    usage=N_("/link [CODE]"),
    names={"de": "verbinden"},
    group=False,
)
async def link_accounts(request: Request, ctx: Context) -> Reply:
    """Show a one-time code, or redeem one made on the member's other account."""
    code_text = request.args.strip()
    if not code_text:
        link = await create_link_code(ctx.session, ctx.member, ctx.now)
        return Reply(
            lines(
                [
                    Markup.escape(_("Your link code: {code}")).format(code=code(link.code)),
                    Markup.escape(
                        _("Send {command} from your other account within {minutes} minutes.")
                    ).format(
                        command=code(f"/link {link.code}"),
                        minutes=int(VALID_FOR.total_seconds() // 60),
                    ),
                ]
            )
        )
    if len(code_text) > 40:
        raise UserError(_("This link code is not valid. Please check it."))
    result = await redeem_link_code(ctx.session, code_text, ctx.member, ctx.now)
    if isinstance(result, LinkRefused):
        reason = {
            LinkRefused.UNKNOWN: _("This link code is not valid. Please check it."),
            LinkRefused.EXPIRED: _("This link code has expired. Send /link again."),
            LinkRefused.SAME_MEMBER: _("This account is linked already."),
        }[result]
        raise UserError(reason, show_usage=False)
    return Reply(
        Markup.escape(
            _("Linked: your subscriptions, answers and language now follow you on both.")
        )
    )
