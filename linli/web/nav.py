"""What the console's left navigation and the portal's home tiles offer, by permission.

Domains add their entries when their pages module is imported::

    from linli.web import nav
    nav.register(nav.NavItem("billing", N_("Billing"), "/console/billing",
                             Permission.BILLING_READ, icon="receipt", order=40))
    nav.register_tile(nav.PortalTile("fees", N_("Pay fees"), "card", path="/portal/fees"))

Registering a key again replaces the entry, which is how a domain takes over the
placeholder the web shell keeps for it. A person sees an item only when their role
holds its permission; the page behind it checks the same permission again.
"""

from __future__ import annotations

from dataclasses import dataclass

from linli.auth.actor import Actor
from linli.auth.permissions import Permission


def N_(message: str) -> str:
    """Marks a msgid for extraction; it is translated where it is shown."""
    return message


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str  # msgid, translated in the template
    path: str
    permission: Permission
    icon: str = "dot"
    order: int = 100
    placeholder: bool = False  # a section that is still being built

    def active_for(self, path: str) -> bool:
        if self.path == "/console":
            return path in ("/console", "/console/")
        return path == self.path or path.startswith(self.path + "/")


@dataclass(frozen=True)
class PortalTile:
    key: str
    label: str  # msgid
    icon: str
    path: str | None = None  # None: "coming soon", shown disabled
    order: int = 100


_nav: dict[str, NavItem] = {}
_tiles: dict[str, PortalTile] = {}


def register(item: NavItem) -> None:
    _nav[item.key] = item


def register_tile(tile: PortalTile) -> None:
    _tiles[tile.key] = tile


def visible_items(actor: Actor) -> list[NavItem]:
    return sorted(
        (item for item in _nav.values() if actor.can(item.permission)),
        key=lambda item: (item.order, item.key),
    )


def all_items() -> list[NavItem]:
    return sorted(_nav.values(), key=lambda item: (item.order, item.key))


def placeholders() -> list[NavItem]:
    return [item for item in all_items() if item.placeholder]


def tiles() -> list[PortalTile]:
    return sorted(_tiles.values(), key=lambda tile: (tile.order, tile.key))


def placeholder_path(key: str) -> str:
    # Placeholders live under /console/soon/ so a domain's real page at its own
    # path never collides with the shell's stand-in.
    return f"/console/soon/{key}"


register(NavItem("dashboard", N_("Overview"), "/console", Permission.AUTHENTICATED, "home", 0))
register(
    NavItem(
        "communities",
        N_("Communities"),
        "/console/communities",
        Permission.COMMUNITIES_READ,
        "building",
        10,
    )
)

for _key, _label, _icon, _order in (
    ("fees", N_("Pay fees"), "card", 10),
    ("doors", N_("Open doors"), "key", 20),
    ("visitors", N_("Visitors"), "visitor", 30),
    ("repairs", N_("Repairs"), "wrench", 40),
    ("parcels", N_("Parcels"), "parcel", 50),
    ("votes", N_("Votes"), "vote", 60),
):
    register_tile(PortalTile(_key, _label, _icon, None, _order))
