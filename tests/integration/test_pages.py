"""Browser pages: served with the right types and security headers, every text translated in
both languages, and nothing they reference missing."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from livedesk.demo import art, data
from livedesk.pages.routes import PAGES, WEB_DIR
from livedesk.pages.shell import PageError, page_files, render

# Every page file, checked as the browser gets it: inside the page shell.
HTML_FILES = page_files(WEB_DIR)
JS_FILES = sorted(WEB_DIR.rglob("*.js"))
LANGUAGES = ("en", "ja")
STAFF_PAGES = ("/staff/", "/supervisor/", "/admin/")


class PageParser(HTMLParser):
    """Collects what a page references and translates, and anything inline."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()
        self.urls: set[str] = set()
        self.inline: list[str] = []
        self.html_lang: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "html":
            self.html_lang = found.get("lang")
        if "data-i18n" in found:
            self.keys.add(found["data-i18n"])
        for pair in found.get("data-i18n-attr", "").split(";"):
            if ":" in pair:
                self.keys.add(pair.split(":", 1)[1].strip())
        for name in ("src", "href"):
            if found.get(name, "").startswith("/"):
                self.urls.add(found[name])
        if tag == "script" and "src" not in found:
            self.inline.append("inline <script>")
        if tag == "style" or "style" in found:
            self.inline.append(f"inline style on <{tag}>")
        self.inline += [f"{name} handler on <{tag}>" for name in found if name.startswith("on")]


def parse(relative: str) -> PageParser:
    parser = PageParser()
    parser.feed(render(WEB_DIR, relative))
    return parser


def load_table(lang: str) -> dict[str, str]:
    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys in {lang}.json"
        return dict(pairs)

    # The shared table and every page area's own (web/<area>/i18n/), as i18n.js merges them.
    paths = [WEB_DIR / "shared" / "i18n" / f"{lang}.json"]
    paths += sorted(p for p in WEB_DIR.glob(f"*/i18n/{lang}.json") if p.parent.parent.name != "shared")
    table: dict[str, str] = {}
    for path in paths:
        part = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicates)
        clash = set(part) & set(table)
        assert not clash, f"{path} redefines keys of another table: {sorted(clash)[:5]}"
        table.update(part)
    return table


def keys_used_in_scripts() -> set[str]:
    keys: set[str] = set()
    for path in JS_FILES:
        keys.update(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", path.read_text(encoding="utf-8")))
    return keys


def test_every_page_file_exists() -> None:
    for relative in PAGES.values():
        assert (WEB_DIR / relative).is_file(), relative


@pytest.mark.parametrize("path", list(PAGES))
async def test_page_is_html_with_security_headers(client: Any, path: str) -> None:
    response = await client.get(path)
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.charset == "utf-8"
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    if path in STAFF_PAGES:
        assert directives["frame-ancestors"] == ["'none'"]
        assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


@pytest.mark.parametrize("path", ["/staff", "/supervisor", "/admin"])
async def test_staff_paths_without_slash_redirect(client: Any, path: str) -> None:
    response = await client.get(path, allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == f"{path}/"


async def test_headers_stay_off_the_api(client: Any) -> None:
    response = await client.get("/healthz")
    assert "Content-Security-Policy" not in response.headers


async def test_static_files_have_their_content_types(client: Any) -> None:
    expected = {
        "/shared/i18n.js": "javascript",
        "/shared/base.css": "text/css",
        "/shared/i18n/ja.json": "application/json",
        "/demo/products/hb-sk-001.svg": "image/svg+xml",
        "/favicon.svg": "image/svg+xml",
    }
    for path, kind in expected.items():
        response = await client.get(path)
        assert response.status == 200, path
        assert kind in response.content_type, (path, response.content_type)
        assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    "path", ["/shared/%2e%2e/index.html", "/shared/..%2f..%2fpyproject.toml", "/shared/"]
)
async def test_no_escape_from_web_and_no_listings(client: Any, path: str) -> None:
    response = await client.get(path)
    assert response.status in (403, 404)


def test_pages_have_no_inline_script_or_style() -> None:
    for path in HTML_FILES:
        page = parse(path)
        assert page.inline == [], (path, page.inline)
        assert page.html_lang in LANGUAGES, path


def test_translation_tables_cover_every_key_in_both_languages() -> None:
    tables = {lang: load_table(lang) for lang in LANGUAGES}
    assert set(tables["en"]) == set(tables["ja"])
    used = set().union(*(parse(p).keys for p in HTML_FILES)) | keys_used_in_scripts()
    # Keys built at run time from data: categories, skills, roles, areas and error codes.
    used |= {f"category.{p.category}" for p in data.CATALOGUE}
    used |= {f"skill.{s}" for profile in data.STAFF for s in profile.skills}
    used |= {f"role.{profile.role.value}" for profile in data.STAFF}
    used |= {f"lang.{lang}" for profile in data.STAFF for lang in profile.languages}
    used |= {"staff.area.advisor", "staff.area.supervisor", "staff.area.admin"}
    assert used, "no keys found: the parser is broken"
    for lang, table in tables.items():
        missing = used - set(table)
        assert not missing, f"{lang}.json lacks {sorted(missing)}"
        assert all(value.strip() for value in table.values()), lang
    for key in tables["en"]:
        placeholders = [set(re.findall(r"\{(\w+)\}", tables[lang][key])) for lang in LANGUAGES]
        assert placeholders[0] == placeholders[1], key


async def test_everything_the_pages_reference_exists(client: Any) -> None:
    urls: set[str] = set()
    for path in HTML_FILES:
        urls |= parse(path).urls
    for path in JS_FILES:
        urls.update(re.findall(r"""(?:from|import)\s*["'](/[^"']+)["']""", path.read_text(encoding="utf-8")))
        urls.update(re.findall(r"""fetch\(\s*["'`](/[^"'`$]+)["'`]""", path.read_text(encoding="utf-8")))
    urls |= {f"/shared/i18n/{lang}.json" for lang in LANGUAGES}
    catalogue = await (await client.get("/demo/catalogue.json")).json()
    urls |= {p["image_url"] for p in catalogue["products"]}
    urls |= {a["photo_url"] for a in catalogue["advisors"]}
    assert len(urls) > 20
    for url in sorted(urls):
        path = urlsplit(url).path
        response = await client.get(path)
        if path.startswith("/api/"):
            # API calls need a signed-in person or a token; here it is enough that they exist.
            assert response.status != 404, f"{url} → 404"
        else:
            assert response.status == 200, f"{url} → {response.status}"


async def test_catalogue_lists_the_demo_products_and_advisors(client: Any) -> None:
    response = await client.get("/demo/catalogue.json")
    assert response.status == 200
    body = await response.json()
    assert [p["sku"] for p in body["products"]] == [p.sku for p in data.CATALOGUE]
    assert all(isinstance(p["price_minor"], int) and p["currency"] == "JPY" for p in body["products"])
    assert body["featured_sku"] in {p.sku for p in data.CATALOGUE}
    assert len(body["advisors"]) == 6


def test_demo_pictures_match_their_drawings() -> None:
    """The committed SVGs are what art.py draws (run `python -m livedesk.demo.art` after
    changing the catalogue or the staff)."""
    for relative, svg in art.drawings().items():
        assert (WEB_DIR / relative).read_text(encoding="utf-8") == svg, relative


def test_every_page_is_served_in_the_shell() -> None:
    for relative in HTML_FILES:
        page = render(WEB_DIR, relative)
        assert page.startswith("<!doctype html>\n<html lang="), relative
        assert page.count('class="skip-link"') == 1, relative
        assert page.count("<noscript>") == 1, relative
        assert page.count('rel="icon"') == 1, relative
        assert "<!-- shared:" not in page, relative
        assert "$" not in page.split("</head>")[0], relative


def test_a_page_file_without_head_or_body_is_refused(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "shell.html").write_text((WEB_DIR / "shared" / "shell.html").read_text())
    (tmp_path / "p.html").write_text("<p>no head</p>")
    with pytest.raises(PageError):
        render(tmp_path, "p.html")
    (tmp_path / "q.html").write_text("<head></head><body><!-- shared:nothing --></body>")
    with pytest.raises(PageError):
        render(tmp_path, "q.html")


async def test_pages_revalidate_by_etag(client: Any) -> None:
    first = await client.get("/admin/catalogue.html")
    assert first.status == 200
    assert '<link rel="stylesheet" href="/shared/base.css">' in await first.text()
    again = await client.get("/admin/catalogue.html", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert again.headers["Content-Security-Policy"] == first.headers["Content-Security-Policy"]
