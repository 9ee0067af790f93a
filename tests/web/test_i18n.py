"""The message catalogue and language choice, without a database."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import healthgrid.registry.web as registry_web
from healthgrid.web.i18n import MESSAGES, Catalogue, parse_lang, pick
from healthgrid.web.paging import Pager
from healthgrid.web.templating import PLATFORM_TEMPLATES, format_local_time


def test_catalogue_returns_the_text_of_the_language_with_parameters():
    cat = Catalogue()
    cat.add({"x.count": ("共 {n} 家", "{n} in all")})
    assert cat.get("x.count", "zh", n=3) == "共 3 家"
    assert cat.get("x.count", "en", n=3) == "3 in all"


def test_a_missing_message_shows_its_key_instead_of_failing():
    assert Catalogue().get("nowhere.defined", "zh") == "nowhere.defined"


def test_a_key_cannot_be_redefined_with_another_text():
    cat = Catalogue()
    cat.add({"a.b": ("甲", "A")})
    cat.add({"a.b": ("甲", "A")})  # the same pair again: harmless
    with pytest.raises(ValueError, match="already defined"):
        cat.add({"a.b": ("乙", "B")})


@pytest.mark.parametrize("pair", [("只有中文",), ("中文", ""), ("中文", "en", "fr")])
def test_every_message_needs_one_non_empty_text_per_language(pair):
    with pytest.raises(ValueError, match="one non-empty text per language"):
        Catalogue().add({"bad": pair})


@pytest.mark.parametrize("value, lang", [("zh", "zh"), ("zh-CN", "zh"), ("EN", "en"), ("en-GB", "en"),
                                         ("fr", None), ("", None), (None, None)])
def test_language_tags_are_read_leniently(value, lang):
    assert parse_lang(value) == lang


def test_pick_chooses_from_a_domain_label_pair():
    assert pick(("县域医共体", "County medical community"), "en") == "County medical community"
    assert pick(("县域医共体", "County medical community"), "zh") == "县域医共体"
    assert pick(None, "en", "L9") == "L9"


def test_times_are_shown_in_the_configured_zone():
    utc = datetime(2024, 3, 1, 16, 30, tzinfo=UTC)
    assert format_local_time(ZoneInfo("Asia/Shanghai"), utc) == "2024-03-02 00:30"
    assert format_local_time(ZoneInfo("Asia/Shanghai"), utc.replace(tzinfo=None)) == "2024-03-02 00:30"
    assert format_local_time(ZoneInfo("Asia/Shanghai"), None) == ""


def test_pager_arithmetic():
    pager = Pager(3, size=20).with_total(45)
    assert (pager.offset, pager.pages, pager.has_prev, pager.has_next) == (40, 3, True, False)
    assert Pager(1).with_total(0).pages == 1


def _literal_keys(folder: Path) -> set[str]:
    keys = set()
    for template in folder.rglob("*.html"):
        keys |= set(re.findall(r"""\bt\(\s*["']([\w.-]+)["']\s*[,)]""", template.read_text(encoding="utf-8")))
    return keys


@pytest.mark.parametrize("folder", [PLATFORM_TEMPLATES, registry_web.TEMPLATES])
def test_every_label_a_template_asks_for_is_in_the_catalogue(folder):
    keys = _literal_keys(folder)
    assert keys, folder
    assert sorted(k for k in keys if k not in MESSAGES) == []


def test_role_and_summary_labels_built_from_codes_exist():
    # templates build these keys from data ("registry.role." ~ role), so list them here
    for key in ("registry.role.lead", "registry.role.member", *(
            f"registry.summary.{k}" for k in ("divisions", "organizations", "alliances", "practitioners",
                                              "departments", "practice_sites"))):
        assert key in MESSAGES, key
