"""What contexts plug into the shared layout: header navigation entries and home-page panels.

The web platform must not import any context (import-linter contract), yet the header and
the home page show every context's entry points. So a context's ``web.py`` registers them
here when it is imported, the same way it adds its messages to the catalogue::

    add_nav_item(NavItem("registry.nav.divisions", "/registry/divisions", order=10))
    add_home_panel(HomePanel("registry", "registry/_home.html", load=_home_data, order=10))

Registration is keyed (by href / panel name), so importing a module twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class NavItem:
    message_key: str  # label, looked up in the catalogue in the request's language
    href: str  # an app-relative path; the entry is "current" for every path under it
    order: int = 100
    perm: str | None = None  # shown only to users holding this permission (None: to everyone)


@dataclass(frozen=True)
class HomePanel:
    name: str
    template: str  # a template of the context, rendered inside the home page
    load: Callable[[Session], dict[str, Any]]  # the panel's data (read-only queries)
    order: int = 100
    perm: str | None = None  # shown only to users holding this permission (None: to everyone)


_NAV: dict[str, NavItem] = {}
_PANELS: dict[str, HomePanel] = {}


def add_nav_item(item: NavItem) -> None:
    _NAV[item.href] = item


def add_home_panel(panel: HomePanel) -> None:
    _PANELS[panel.name] = panel


def visible(perm: str | None, perms: set[str] | frozenset[str]) -> bool:
    """Whether an entry guarded by ``perm`` is shown to a user holding ``perms``."""
    return perm is None or perm in perms


def nav_items() -> list[NavItem]:
    return sorted(_NAV.values(), key=lambda i: (i.order, i.href))


def home_panels() -> list[HomePanel]:
    return sorted(_PANELS.values(), key=lambda p: (p.order, p.name))
