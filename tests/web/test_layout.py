"""The shared layout, language switch, static assets and error pages, through HTTP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from tests.conftest import _platform_actor

from healthgrid.app import create_app
from healthgrid.config import WebSettings
from healthgrid.http import get_session
from healthgrid.security.http import optional_actor
from healthgrid.web.i18n import LANG_COOKIE

HTML = {"accept": "text/html,application/xhtml+xml"}


def test_home_page_is_in_chinese_by_default(client, small_region):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert html.startswith("<!doctype html>") and '<html lang="zh-CN">' in html
    assert "<h1>HealthGrid 区域卫生信息平台</h1>" in html and "分级诊疗" in html
    assert "区域概况" in html and "区域内行政区划" in html
    assert 'href="/registry/divisions/530000">滇中省' in html
    assert re.search(r'data-stat="organizations">\s*<span class="stat__value">1</span>', html)
    assert 'href="/?lang=en"' in html and ">English</a>" in html
    assert LANG_COOKIE not in r.headers.get("set-cookie", "")


def test_lang_parameter_switches_to_english_and_is_remembered_in_a_cookie(client, small_region):
    r = client.get("/?lang=en")
    assert '<html lang="en">' in r.text
    assert "The region at a glance" in r.text and "Divisions of the region" in r.text
    assert "区域概况" not in r.text and ">中文</a>" in r.text and 'href="/?lang=zh"' in r.text
    assert f"{LANG_COOKIE}=en" in r.headers["set-cookie"]
    # the cookie now carries the choice to pages without ?lang
    later = client.get("/registry/alliances")
    assert '<html lang="en">' in later.text and "Medical alliances" in later.text
    back = client.get("/registry/alliances?lang=zh")
    assert '<html lang="zh-CN">' in back.text and f"{LANG_COOKIE}=zh" in back.headers["set-cookie"]


def test_cookie_alone_selects_the_language(client):
    client.cookies.set(LANG_COOKIE, "en")
    html = client.get("/registry/search").text
    assert "Find a facility" in html and "Search the region&#39;s health facilities by name." in html


def test_language_switch_link_keeps_the_current_query(client):
    html = client.get("/registry/search?q=%E5%8C%BB%E9%99%A2").text
    assert 'href="/registry/search?q=%E5%8C%BB%E9%99%A2&amp;lang=en"' in html


def test_navigation_marks_the_current_section(client):
    html = client.get("/registry/alliances").text
    assert '<a href="/registry/alliances" aria-current="page">医联体</a>' in html
    assert '<a href="/registry/divisions">地区与机构</a>' in html


def test_default_language_comes_from_settings(settings, session):
    english = settings.model_copy(update={"web": WebSettings(default_language="en")})
    app = create_app(english)
    app.dependency_overrides[get_session] = lambda: session
    app.dependency_overrides[optional_actor] = _platform_actor
    try:
        with TestClient(app) as c:
            assert '<html lang="en">' in c.get("/").text
            assert '<html lang="zh-CN">' in c.get("/?lang=zh").text
    finally:
        app.state.engine.dispose()


def test_stylesheet_and_icon_are_served_by_the_app(client):
    html = client.get("/").text
    css_href = re.search(r'<link rel="stylesheet" href="([^"]+)"', html).group(1)
    assert css_href.startswith("/static/")
    css = client.get(css_href)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "Noto Sans CJK SC" in css.text
    assert "url(" not in css.text and "@import" not in css.text  # nothing fetched from elsewhere
    icon = client.get(re.search(r'<link rel="icon" href="([^"]+)"', html).group(1))
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_pages_reference_only_the_app_itself(client, small_region):
    for path in ("/", "/?lang=en", "/registry/divisions", "/no-such-page"):
        html = client.get(path, headers=HTML).text
        links = re.findall(r'(?:src|href|action)\s*=\s*["\']([^"\']*)', html)
        assert links and all(link.startswith(("/", "#")) and not link.startswith("//") for link in links)
        assert "http://" not in html and "https://" not in html


def test_unknown_path_is_an_html_404_for_browsers_and_json_for_api_clients(client):
    page = client.get("/no-such-page", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert '<code class="error-code">HG-404</code>' in page.text and "没有这个页面。" in page.text
    english = client.get("/no-such-page?lang=en", headers=HTML)
    assert "Not found" in english.text and "There is no such page." in english.text
    api = client.get("/api/no-such-endpoint", headers={"accept": "application/json"})
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}


def test_invalid_path_parameter_is_an_html_422_page(client):
    r = client.get("/registry/organizations/not-a-number")
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
    assert '<code class="error-code">HG-422</code>' in r.text and "输入有误" in r.text


def test_footer_states_the_time_zone(client):
    assert "时间均按 Asia/Shanghai 时区显示" in client.get("/").text
    assert "All times are shown in the Asia/Shanghai time zone" in client.get("/?lang=en").text
