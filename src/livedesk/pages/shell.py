"""The page shell: every HTML page of ``web/`` is its own ``<head>`` lines and ``<body>``, put
into ``web/shared/shell.html`` when served.

The shell holds what every page repeats (doctype, ``<html lang>``, charset, viewport, icon,
``base.css``, the no-JavaScript notice and the skip link), and ``<!-- shared:NAME -->`` in a
page is replaced by ``web/shared/partials/NAME.html`` (the language switch). Done by the server
at request time, so there is still no build step; the result is kept in memory until one of its
files changes, and is served with an ETag like the static files.
"""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass
from pathlib import Path

SHELL = Path("shared") / "shell.html"
PARTIALS = Path("shared") / "partials"

_HEAD = re.compile(r"<head>(?P<head>.*?)</head>", re.DOTALL)
_BODY = re.compile(r"<body(?P<attrs>[^>]*)>(?P<body>.*)</body>", re.DOTALL)
_PARTIAL = re.compile(r"(?m)^(?P<indent>[ ]*)<!-- shared:(?P<name>[a-z-]+) -->")
_DEFAULT_ICON = '\n  <link rel="icon" href="/favicon.svg" type="image/svg+xml">'
_DEFAULT_NOSCRIPT = (
    '\n  <noscript><p class="noscript">This page needs JavaScript. / '
    "このページを表示するには JavaScript を有効にしてください。</p></noscript>"
)


class PageError(ValueError):
    """A page file that the shell cannot hold (no <head> or <body>, an unknown partial)."""


@dataclass(frozen=True)
class Rendered:
    body: bytes
    etag: str


def render(web_dir: Path, relative: str) -> str:
    """The full HTML of the page file ``web_dir/relative``."""
    page = (web_dir / relative).read_text(encoding="utf-8")
    head, body = _HEAD.search(page), _BODY.search(page)
    if head is None or body is None:
        raise PageError(f"{relative}: a page file has a <head> and a <body>")
    page_head = head.group("head").strip("\n")
    page_body = body.group("body").strip("\n")

    def partial(match: re.Match[str]) -> str:
        path = web_dir / PARTIALS / f"{match.group('name')}.html"
        if not path.is_file():
            raise PageError(f"{relative}: no partial {match.group('name')!r}")
        lines = path.read_text(encoding="utf-8").strip("\n").split("\n")
        return "\n".join(match.group("indent") + line for line in lines)

    shell = string.Template((web_dir / SHELL).read_text(encoding="utf-8"))
    # A page may bring its own icon or notice (the demo shop is another brand's page).
    return shell.substitute(
        icon="" if 'rel="icon"' in page_head else _DEFAULT_ICON,
        head=page_head,
        body_attrs=body.group("attrs"),
        noscript="" if "<noscript" in page_body else _DEFAULT_NOSCRIPT,
        body=_PARTIAL.sub(partial, page_body),
    )


class ShellCache:
    """Rendered pages, kept until the page, the shell or a partial changes on disk."""

    def __init__(self, web_dir: Path) -> None:
        self._web_dir = web_dir
        self._pages: dict[str, tuple[tuple[int, ...], Rendered]] = {}
        # Listed once: a page request stats its files but does not list a folder. An edited
        # partial is still seen; a new partial file needs a restart (it needs new markup anyway).
        partials = web_dir / PARTIALS
        self._shared = [web_dir / SHELL, *(sorted(partials.glob("*.html")) if partials.is_dir() else [])]

    def _stamp(self, relative: str) -> tuple[int, ...]:
        return tuple(p.stat().st_mtime_ns for p in (self._web_dir / relative, *self._shared))

    def get(self, relative: str) -> Rendered:
        stamp = self._stamp(relative)
        cached = self._pages.get(relative)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        body = render(self._web_dir, relative).encode("utf-8")
        rendered = Rendered(body, f'"{hashlib.sha256(body).hexdigest()[:32]}"')
        self._pages[relative] = (stamp, rendered)
        return rendered


def page_files(web_dir: Path) -> list[str]:
    """Every page file under web/ (not the shell's own folder, not vendored files)."""
    return sorted(
        str(p.relative_to(web_dir))
        for p in web_dir.rglob("*.html")
        if p.relative_to(web_dir).parts[0] not in ("shared", "vendor")
    )
