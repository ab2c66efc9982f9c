"""The network's partners, and how members become partner representatives."""

from __future__ import annotations

from markupsafe import Markup

from bot.core import Reply, Request, Role, UserError
from bot.i18n import N_, _, format_month, ngettext
from bot.markup import blocks, bold, code, lines, link, shorten
from bot.routing import Context, Router
from handlers.paging import page_buttons, page_count, split_page
from storage.invites import VALID_FOR, InviteRefused, create_invite, redeem_invite
from storage.models import Partner
from storage.partners import find_partners, list_partners, tip_count

router = Router("partners")
PAGE_SIZE = 10


@router.command(
    "partners",
    help=N_("the network's partners"),
    usage=N_("/partners"),
    names={"de": "klimapartner"},
)
async def show_partners(request: Request, ctx: Context) -> Reply:
    """List the partners in the order they joined."""
    _rest, page = split_page(request.args)
    partners, total = await list_partners(
        ctx.session, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    if total == 0:
        return Reply(Markup.escape(_("No partners are registered yet.")))
    # A page past the end shows the last one.
    pages = page_count(total, PAGE_SIZE)
    if not partners:
        page = pages
        partners, total = await list_partners(
            ctx.session, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
    heading = bold(
        _("Partners of {network} ({page}/{pages})").format(
            network=ctx.network, page=page, pages=pages
        )
    )
    entries = [
        Markup("• {} – {}").format(bold(partner.name), _since(partner)) for partner in partners
    ]
    hint = Markup.escape(_("More about one partner: {command}")).format(
        command=code(_("/partner NAME"))
    )
    paging = page_buttons("partners", "", page, pages)
    return Reply(
        blocks([heading, lines(entries), hint]),
        (paging,) if paging else (),
        edit_origin=request.via_button,
    )


@router.command(
    "partner",
    help=N_("one partner in full"),
    usage=N_("/partner NAME"),
)
async def show_partner(request: Request, ctx: Context) -> Reply:
    """Show one partner, found by (part of) its name."""
    partner = await _one_partner(ctx, request.args)
    tips = await tip_count(ctx.session, partner.id)
    shared = ngettext("{count} tip shared", "{count} tips shared", tips).format(count=tips)
    return Reply(
        blocks(
            [
                lines(
                    [
                        bold(partner.name),
                        _since(partner),
                        shared,
                        link(partner.website) if partner.website else None,
                    ]
                ),
                partner.description,
            ]
        )
    )


@router.command(
    "invite",
    help=N_("one-time invite code for a partner's people"),
    usage=N_("/invite PARTNER"),
    names={"de": "einladen"},
    role=Role.COORDINATOR,
    group=False,
)
async def invite_partner(request: Request, ctx: Context) -> Reply:
    """Create a one-time code that links whoever redeems it to the partner."""
    partner = await _one_partner(ctx, request.args)
    invite = await create_invite(ctx.session, partner, ctx.member.id, ctx.now)
    return Reply(
        lines(
            [
                Markup.escape(_("Invite code for {partner}: {code}")).format(
                    partner=bold(partner.name), code=code(invite.code)
                ),
                Markup.escape(
                    _("Valid once, for {days} days. The person sends the bot: {command}")
                ).format(days=VALID_FOR.days, command=code(f"/join {invite.code}")),
            ]
        )
    )


@router.command(
    "join",
    help=N_("link yourself to your partner organisation"),
    usage=N_("/join CODE"),
    names={"de": "beitreten"},
    group=False,
)
async def join_partner(request: Request, ctx: Context) -> Reply:
    """Redeem an invite code: the member now represents that partner."""
    if not request.args.strip() or len(request.args) > 40:
        raise UserError(_("Please give the invite code you received from a coordinator."))
    result = await redeem_invite(ctx.session, request.args, ctx.member, ctx.now)
    if isinstance(result, InviteRefused):
        reason = {
            InviteRefused.UNKNOWN: _("This invite code is not valid. Please check it."),
            InviteRefused.USED: _("This invite code has been used already."),
            InviteRefused.EXPIRED: _("This invite code has expired. Please ask for a new one."),
        }[result]
        raise UserError(reason, show_usage=False)
    return Reply(
        Markup.escape(_("Welcome! You now represent {partner} in the network.")).format(
            partner=bold(result.name)
        )
    )


async def _one_partner(ctx: Context, name: str) -> Partner:
    name = shorten(name, 100)
    if not name:
        raise UserError(_("Please give (part of) the partner's name."))
    found = await find_partners(ctx.session, name)
    if not found:
        raise UserError(
            _("No partner is called “{name}”. /partners lists them all.").format(name=name),
            show_usage=False,
        )
    if len(found) > 1:
        names = ", ".join(partner.name for partner in found)
        raise UserError(
            _("“{name}” fits several partners: {names}. Please be more precise.").format(
                name=name, names=names
            ),
            show_usage=False,
        )
    return found[0]


def _since(partner: Partner) -> Markup:
    since = _("partner since {month}").format(month=format_month(partner.joined))
    return Markup.escape(f"{partner.sector}, {since}" if partner.sector else since)
