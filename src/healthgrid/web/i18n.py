"""The web UI's languages and its message catalogue.

Simplified Chinese is the default, English the alternative. Every label of every page goes
through one catalogue of ``key -> (zh, en)`` pairs — the same shape as the label tables in
the contexts' ``domain.py`` — so a page can never be half translated without a test
noticing. The platform adds its own messages (``web/messages.py``); a context adds its
own at import time of its ``web.py``::

    from healthgrid.web import add_messages
    add_messages({"registry.title": ("机构目录", "Facility registry")})

The language of a request is ``?lang=`` if given, else the ``hg_lang`` cookie, else the
configured default; the renderer stores a ``?lang=`` choice in the cookie.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Literal

from starlette.requests import Request

Lang = Literal["zh", "en"]
LANGUAGES: tuple[Lang, ...] = ("zh", "en")
# BCP 47 tags for <html lang>: screen readers and font selection need the script/region.
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LANG_COOKIE = "hg_lang"

log = logging.getLogger(__name__)


class Catalogue:
    """``key -> (zh, en)``; lookups fall back to the key itself so a missing message is
    visible on the page (and caught by the tests) instead of crashing the request."""

    def __init__(self) -> None:
        self._messages: dict[str, tuple[str, str]] = {}

    def add(self, messages: Mapping[str, tuple[str, str]]) -> None:
        for key, pair in messages.items():
            if len(pair) != len(LANGUAGES) or not all(isinstance(s, str) and s for s in pair):
                raise ValueError(f"message {key!r} needs one non-empty text per language {LANGUAGES}")
            known = self._messages.get(key)
            # Re-adding the same pair is harmless (a module imported twice); a different
            # text under the same key would silently change another context's page.
            if known is not None and known != tuple(pair):
                raise ValueError(f"message {key!r} is already defined as {known!r}")
            self._messages[key] = (pair[0], pair[1])

    def __contains__(self, key: str) -> bool:
        return key in self._messages

    def get(self, key: str, lang: str, /, **params: object) -> str:
        pair = self._messages.get(key)
        if pair is None:
            log.warning("no message %r in the web catalogue", key)
            return key
        text = pick(pair, lang)
        return text.format(**params) if params else text


def pick(pair: tuple[str, str] | None, lang: str, fallback: str = "") -> str:
    """The text of a ``(zh, en)`` pair for ``lang``; ``fallback`` when there is no pair."""
    if pair is None:
        return fallback
    return pair[1] if lang == "en" else pair[0]


def parse_lang(value: str | None) -> Lang | None:
    value = (value or "").strip().lower()
    # Accept the tags browsers and people write, not only our two codes.
    if value in ("zh", "zh-cn", "zh-hans", "cn"):
        return "zh"
    if value in ("en", "en-us", "en-gb"):
        return "en"
    return None


def request_language(request: Request, default: Lang) -> Lang:
    return (parse_lang(request.query_params.get("lang"))
            or parse_lang(request.cookies.get(LANG_COOKIE))
            or default)


MESSAGES = Catalogue()


def add_messages(messages: Mapping[str, tuple[str, str]]) -> None:
    """Contribute ``key -> (zh, en)`` messages to the web catalogue (see module docstring)."""
    MESSAGES.add(messages)
