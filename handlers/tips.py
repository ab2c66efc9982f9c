"""Shared CO2-saving tips: browse, search by words or category, read one in full."""

from __future__ import annotations

from markupsafe import Markup

from bot.core import Button, Reply, Request, UserError
from bot.i18n import N_, _, format_number, parse_choice
from bot.markup import blocks, bold, code, lines, shorten
from bot.routing import Context, Router
from handlers.arguments import parse_id
from handlers.paging import page_buttons, page_count, split_page
from storage.models import Category, Tip
from storage.tips import TipPage, get_tip, search_tips, tips_in_category, top_tips

router = Router("tips")
PAGE_SIZE = 5
MAX_QUERY = 200
CATEGORY_NAMES = {
    Category.ENERGY: N_("energy"),
    Category.HEAT: N_("heat"),
    Category.MOBILITY: N_("mobility"),
    Category.PROCUREMENT: N_("procurement"),
    Category.BUILDINGS: N_("buildings"),
    Category.PROCESSES: N_("processes"),
    Category.OTHER: N_("other"),
}


@router.command(
    "tips",
    help=N_("search the network's CO2-saving tips"),
    usage=N_("/tips [words|category]"),
    names={"de": "tipps"},
)
async def list_tips(request: Request, ctx: Context) -> Reply:
    """List tips: the best ones, one category's, or those matching the search words."""
    query, page = split_page(request.args)
    query = shorten(query, MAX_QUERY)
    found, heading = await _find_tips(ctx, query, page)
    if found.total == 0:
        return Reply(_nothing_found(query))
    # A page past the end shows the last one.
    if not found.tips:
        page = page_count(found.total, PAGE_SIZE)
        found, heading = await _find_tips(ctx, query, page)
    return _tip_list(heading, found, query, page, edit=request.via_button)


async def _find_tips(ctx: Context, query: str, page: int) -> tuple[TipPage, str]:
    offset = (page - 1) * PAGE_SIZE
    category = parse_category(query)
    if not query:
        found = await top_tips(ctx.session, offset=offset, limit=PAGE_SIZE)
        return found, _("Tips from the network")
    if category is not None:
        found = await tips_in_category(ctx.session, category, offset=offset, limit=PAGE_SIZE)
        return found, _("Tips: {category}").format(category=category_name(category))
    found = await search_tips(ctx.session, query, offset=offset, limit=PAGE_SIZE)
    return found, _("Tips for “{query}”").format(query=query)


@router.command(
    "tip",
    help=N_("one tip in full"),
    usage=N_("/tip ID"),
    names={"de": "tipp"},
)
async def show_tip(request: Request, ctx: Context) -> Reply:
    """Show one tip in full: partner, category, estimated savings, endorsements."""
    tip_id = parse_id(request.args, _("The tip number must be a number, as shown by /tips."))
    tip = await get_tip(ctx.session, tip_id)
    if tip is None:
        raise UserError(
            _("There is no tip #{id}. /tips lists the tips.").format(id=tip_id),
            show_usage=False,
        )
    shared = _("Shared by {partner}").format(partner=tip.partner.name)
    return Reply(
        blocks(
            [
                Markup("{} {}").format(bold(tip.title), code(f"#{tip.id}")),
                lines([_facts(tip), shared]),
                tip.text,
            ]
        )
    )


def parse_category(text: str) -> Category | None:
    """Return the category a word names, in any supported language."""
    return parse_choice(text, CATEGORY_NAMES)


def category_name(category: Category) -> str:
    """Return a category's name in the current language."""
    return _(CATEGORY_NAMES[category])


def _facts(tip: Tip) -> str:
    facts = [category_name(tip.category)]
    if tip.co2_t_per_year is not None:
        facts.append(_("≈ {amount} t CO₂e/year").format(amount=format_number(tip.co2_t_per_year)))
    if tip.endorsement_count:
        facts.append(_("👍 {count}").format(count=tip.endorsement_count))
    return " · ".join(facts)


def _tip_list(heading: str, found: TipPage, query: str, page: int, *, edit: bool) -> Reply:
    pages = page_count(found.total, PAGE_SIZE)
    title = bold(_("{heading} ({page}/{pages})").format(heading=heading, page=page, pages=pages))
    cards = [
        lines(
            [
                Markup("{} {}").format(bold(tip.title), code(f"#{tip.id}")),
                Markup.escape(f"{tip.partner.name} · {_facts(tip)}"),
                shorten(tip.text, 160),
            ]
        )
        for tip in found.tips
    ]
    buttons = tuple(
        (Button(_("Read #{id}").format(id=tip.id), "tip", str(tip.id)),) for tip in found.tips
    )
    paging = page_buttons("tips", query, page, pages)
    return Reply(
        blocks([title, *cards]), buttons + ((paging,) if paging else ()), edit_origin=edit
    )


def _nothing_found(query: str) -> Markup:
    categories = ", ".join(category_name(category) for category in Category)
    if not query:
        return Markup.escape(_("No tips have been shared yet."))
    return lines(
        [
            Markup.escape(_("No tips found for “{query}”.")).format(query=query),
            Markup.escape(_("Try a shorter word or a category: {categories}")).format(
                categories=categories
            ),
        ]
    )
