"""The browser modules' import rule: a page's module imports only from ``web/shared/``,
``web/vendor/`` and its own folder, so no page breaks when another page changes.

Parsed from the source (static ``import … from``, ``export … from`` and ``import("…")``), since
the browser resolves exactly these strings.
"""

from __future__ import annotations

import re
from pathlib import Path

from livedesk.kit.paths import WEB_DIR

_SPECIFIER = re.compile(
    r"""(?:^|[\s;}])(?:import|export)\s[^'"`;]*?\sfrom\s*(['"])(?P<a>[^'"]+)\1"""
    r"""|(?:^|[\s;}])import\s*(['"])(?P<b>[^'"]+)\3"""
    r"""|\bimport\(\s*(['"])(?P<c>[^'"]+)\5\s*\)""",
    re.MULTILINE,
)
_ALLOWED = ("shared", "vendor")


def _strip_comments(source: str) -> str:
    # JSDoc types such as {import("./socket.js").LiveSocket} are not imports the browser makes.
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    return re.sub(r"(?m)^\s*//.*$", "", source)


def imports_of(source: str) -> list[str]:
    """Module specifiers a module's source imports."""
    found = []
    for match in _SPECIFIER.finditer(_strip_comments(source)):
        found.append(match.group("a") or match.group("b") or match.group("c"))
    return found


def folder_of(specifier: str, importer: Path, web_dir: Path = WEB_DIR) -> str:
    """The top folder of web/ a specifier points into ("" for a file at web/'s root)."""
    if specifier.startswith("/"):
        target = Path(specifier.lstrip("/"))
    else:
        target = (importer.parent / specifier).resolve().relative_to(web_dir.resolve())
    return target.parts[0] if len(target.parts) > 1 else ""


def crossings(web_dir: Path = WEB_DIR) -> list[str]:
    found = []
    for path in sorted(web_dir.rglob("*.js")):
        relative = path.relative_to(web_dir)
        if relative.parts[0] == "vendor":
            continue
        own = relative.parts[0] if len(relative.parts) > 1 else ""
        for specifier in imports_of(path.read_text(encoding="utf-8")):
            folder = folder_of(specifier, path, web_dir)
            if folder in _ALLOWED or folder == own:
                continue
            found.append(f"{relative} imports {specifier}")
    return found


def test_no_page_imports_another_pages_module() -> None:
    assert crossings() == []


def test_parser_sees_every_import_form() -> None:
    source = """
import { a } from "/staff/api.js";
import {
  b,
} from '/widget/x.js';
export { c } from "/call/y.js";
import "/admin/side-effect.js";
const m = await import("/history/z.js");
// import { gone } from "/commented/out.js";
/** @param {import("./socket.js").LiveSocket} s */
"""
    assert imports_of(source) == [
        "/staff/api.js",
        "/widget/x.js",
        "/call/y.js",
        "/admin/side-effect.js",
        "/history/z.js",
    ]


def test_a_crossing_is_found(tmp_path: Path) -> None:
    (tmp_path / "call").mkdir()
    (tmp_path / "widget").mkdir()
    (tmp_path / "call" / "call.js").write_text('import { el } from "/widget/shopper.js";\n')
    (tmp_path / "widget" / "w.js").write_text('import { el } from "/shared/dom.js";\nimport "./own.js";\n')
    assert crossings(tmp_path) == ["call/call.js imports /widget/shopper.js"]
