"""Draws the demo's pictures: advisor avatars and product images, as small SVG files.

The files are committed under ``web/demo/`` (served as static files); a test checks they match
what this module draws, and ``python -m livedesk.demo.art`` redraws them after a change to the
catalogue or the staff in ``data.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from xml.sax.saxutils import escape

from livedesk.demo.data import CATALOGUE, STAFF, Avatar, Product, StaffProfile
from livedesk.kit.paths import WEB_DIR

_SVG = 'xmlns="http://www.w3.org/2000/svg"'


def render_avatar(profile: StaffProfile) -> str:
    a: Avatar = profile.avatar
    back = {"bob": 100, "long": 132, "wavy": 128}.get(a.hair_style)
    parts = [
        f'<svg {_SVG} viewBox="0 0 160 160" role="img" aria-label="{escape(profile.display_name_en)}">',
        '<clipPath id="c"><circle cx="80" cy="80" r="80"/></clipPath>',
        '<g clip-path="url(#c)">',
        f'<rect width="160" height="160" fill="{a.background}"/>',
    ]
    if back is not None:
        edge = (
            f"Q 104 {back + 10} 80 {back - 2} Q 56 {back + 10} 44 {back}"
            if a.hair_style == "wavy"
            else f"Q 80 {back + 8} 44 {back}"
        )
        parts.append(
            f'<path d="M44 70 C44 44 60 32 80 32 C100 32 116 44 116 70 L116 {back} {edge} Z" '
            f'fill="{a.hair}"/>'
        )
    parts += [
        f'<path d="M18 164 C18 124 44 106 80 106 C116 106 142 124 142 164 Z" fill="{a.top}"/>',
        '<path d="M66 106 L80 126 L94 106 Z" fill="#ffffff" fill-opacity="0.35"/>',
        f'<rect x="70" y="86" width="20" height="24" rx="8" fill="{a.skin}"/>',
        '<rect x="70" y="96" width="20" height="8" fill="#000000" fill-opacity="0.06"/>',
        f'<ellipse cx="80" cy="68" rx="25" ry="29" fill="{a.skin}"/>',
    ]
    if a.hair_style == "short":
        parts.append(
            f'<path d="M53 70 C50 46 64 35 81 35 C99 35 111 47 108 70 C104 60 99 53 91 51 '
            f'C80 56 67 55 59 55 C56 59 54 64 53 70 Z" fill="{a.hair}"/>'
        )
    else:
        parts.append(
            f'<path d="M54 70 C52 47 65 38 80 38 C97 38 108 48 106 68 C98 58 88 52 74 53 '
            f'C64 55 58 61 54 70 Z" fill="{a.hair}"/>'
        )
    if a.hair_style == "bun":
        parts.append(f'<circle cx="80" cy="34" r="14" fill="{a.hair}"/>')
    parts += ["</g>", "</svg>"]
    return "\n".join(parts) + "\n"


def _label(x: float, y: float, colour: str, size: int = 14) -> str:
    return (
        f'<text x="{x}" y="{y}" text-anchor="middle" font-family="Georgia, serif" font-size="{size}" '
        f'letter-spacing="3" fill="{colour}">HANAMI</text>'
    )


def _shape(p: Product) -> list[str]:
    c, k = p.colour, p.accent
    match p.shape:
        case "dropper":
            return [
                f'<rect x="222" y="96" width="36" height="70" rx="18" fill="{k}"/>',
                f'<rect x="212" y="160" width="56" height="44" rx="6" fill="{k}" fill-opacity="0.85"/>',
                f'<rect x="176" y="200" width="128" height="200" rx="26" fill="{c}"/>',
                '<rect x="196" y="262" width="88" height="84" rx="6" fill="#ffffff" fill-opacity="0.8"/>',
                _label(240, 310, k, 13),
            ]
        case "bottle":
            return [
                f'<rect x="204" y="92" width="72" height="48" rx="8" fill="{k}"/>',
                f'<rect x="218" y="136" width="44" height="34" fill="{k}" fill-opacity="0.75"/>',
                f'<rect x="168" y="166" width="144" height="234" rx="32" fill="{c}"/>',
                '<rect x="190" y="250" width="100" height="96" rx="6" fill="#ffffff" fill-opacity="0.75"/>',
                _label(240, 302, k),
            ]
        case "jar":
            return [
                f'<rect x="140" y="262" width="200" height="138" rx="30" fill="{c}"/>',
                f'<rect x="128" y="214" width="224" height="62" rx="16" fill="{k}"/>',
                _label(240, 344, k, 16),
            ]
        case "tube":
            return [
                f'<rect x="190" y="106" width="100" height="22" rx="3" fill="{k}" fill-opacity="0.7"/>',
                f'<path d="M196 126 L284 126 L300 366 L180 366 Z" fill="{c}"/>',
                f'<rect x="204" y="362" width="72" height="40" rx="6" fill="{k}"/>',
                _label(240, 250, k, 13),
            ]
        case "sachet":
            return [
                f'<rect x="182" y="104" width="180" height="270" rx="10" fill="{k}" fill-opacity="0.35"/>',
                f'<rect x="150" y="124" width="180" height="276" rx="10" fill="{c}"/>',
                f'<rect x="150" y="318" width="180" height="26" fill="{k}" fill-opacity="0.6"/>',
                '<circle cx="240" cy="228" r="48" fill="#ffffff" fill-opacity="0.7"/>',
                _label(240, 233, k, 13),
            ]
        case "compact":
            return [
                f'<circle cx="240" cy="262" r="124" fill="{k}"/>',
                f'<circle cx="240" cy="262" r="96" fill="{c}"/>',
                '<ellipse cx="212" cy="232" rx="44" ry="22" fill="#ffffff" fill-opacity="0.35"/>',
            ]
        case "lipstick":
            return [
                f'<path d="M214 206 L214 132 Q240 96 266 112 L266 206 Z" fill="{c}"/>',
                '<rect x="206" y="200" width="68" height="66" rx="4" fill="#c9a45c"/>',
                f'<rect x="198" y="262" width="84" height="138" rx="6" fill="{k}"/>',
                _label(240, 340, "#c9a45c", 12),
            ]
        case "pen":
            return [
                '<g transform="rotate(-28 240 250)">',
                f'<rect x="222" y="70" width="36" height="300" rx="10" fill="{c}"/>',
                f'<rect x="222" y="150" width="36" height="12" fill="{k}"/>',
                f'<path d="M228 370 L252 370 L240 420 Z" fill="{c}"/>',
                "</g>",
            ]
        case "palette":
            cells = (c, "#e8c4a0", "#a86b5c", "#5e3a4a")
            squares = [
                f'<rect x="{140 + (i % 2) * 104}" y="{178 + (i // 2) * 86}" width="96" height="78" '
                f'rx="8" fill="{col}"/>'
                for i, col in enumerate(cells)
            ]
            return [f'<rect x="116" y="150" width="248" height="220" rx="22" fill="{k}"/>', *squares]
        case "perfume":
            return [
                f'<rect x="198" y="104" width="84" height="68" rx="8" fill="{k}"/>',
                '<rect x="220" y="168" width="40" height="34" fill="#c9a45c"/>',
                f'<rect x="156" y="198" width="168" height="202" rx="22" fill="{c}" fill-opacity="0.75"/>',
                f'<rect x="172" y="262" width="136" height="124" rx="14" fill="{c}"/>',
                _label(240, 250, k),
            ]
        case "mist":
            return [
                f'<rect x="226" y="100" width="28" height="16" fill="{k}"/>',
                f'<rect x="212" y="114" width="56" height="48" rx="8" fill="{k}"/>',
                f'<rect x="194" y="158" width="92" height="242" rx="22" fill="{c}"/>',
                _label(240, 290, k, 12),
            ]
        case "dress":
            return [
                f'<path d="M204 88 L276 88 L334 146 L306 172 L288 150 L306 404 L174 404 L192 150 '
                f'L174 172 L146 146 Z" fill="{c}"/>',
                f'<path d="M216 88 L240 122 L264 88" fill="none" stroke="{k}" stroke-width="6"/>',
                f'<rect x="186" y="232" width="108" height="14" fill="{k}"/>',
            ]
        case "coat":
            return [
                f'<path d="M194 86 L286 86 L356 150 L348 360 L318 360 L316 190 L322 392 L158 392 '
                f'L164 190 L162 360 L132 360 L124 150 Z" fill="{c}"/>',
                f'<path d="M214 86 L240 150 L266 86" fill="none" stroke="{k}" stroke-width="8"/>',
                f'<line x1="240" y1="150" x2="240" y2="392" stroke="{k}" stroke-width="4"/>',
                f'<circle cx="226" cy="210" r="6" fill="{k}"/><circle cx="226" cy="270" r="6" fill="{k}"/>',
            ]
        case "trousers":
            return [
                f'<path d="M174 96 L306 96 L324 404 L260 404 L240 186 L220 404 L156 404 Z" fill="{c}"/>',
                f'<rect x="174" y="96" width="132" height="20" fill="{k}"/>',
                f'<line x1="196" y1="130" x2="186" y2="396" stroke="{k}" stroke-width="2"/>',
                f'<line x1="284" y1="130" x2="294" y2="396" stroke="{k}" stroke-width="2"/>',
            ]
        case "stole":
            fringe = "".join(
                f'<line x1="{166 + i * 12}" y1="392" x2="{166 + i * 12}" y2="414" '
                f'stroke="{k}" stroke-width="3"/>'
                for i in range(13)
            )
            return [
                f'<path d="M160 90 C200 120 280 120 320 90 L320 392 L160 392 Z" fill="{c}"/>',
                f'<path d="M160 90 C200 120 280 120 320 90 L300 150 C260 170 220 170 180 150 Z" '
                f'fill="{k}" fill-opacity="0.35"/>',
                fringe,
            ]
        case "cardigan":
            return [
                f'<path d="M196 92 L284 92 L348 150 L340 372 L306 372 L304 196 L304 396 L176 396 '
                f'L176 196 L174 372 L140 372 L132 150 Z" fill="{c}"/>',
                f'<path d="M212 92 L240 180 L268 92" fill="none" stroke="{k}" stroke-width="6"/>',
                f'<line x1="240" y1="180" x2="240" y2="396" stroke="{k}" stroke-width="3"/>',
                *(f'<circle cx="250" cy="{210 + i * 44}" r="5" fill="{k}"/>' for i in range(4)),
            ]
        case "scarf":
            dots = "".join(
                f'<circle cx="{240 + dx}" cy="{250 + dy}" r="16" fill="none" stroke="{k}" stroke-width="5"/>'
                for dx, dy in ((-60, 0), (60, 0), (0, -60), (0, 60), (0, 0))
            )
            return [
                f'<rect x="130" y="140" width="220" height="220" rx="8" fill="{c}" '
                'transform="rotate(45 240 250)"/>',
                f'<rect x="160" y="170" width="160" height="160" fill="none" stroke="{k}" stroke-width="4" '
                'transform="rotate(45 240 250)"/>',
                dots,
            ]
        case "tote":
            return [
                f'<path d="M190 210 C190 110 290 110 290 210" fill="none" stroke="{k}" stroke-width="14"/>',
                f'<path d="M146 196 L334 196 L354 402 L126 402 Z" fill="{c}"/>',
                f'<rect x="146" y="196" width="188" height="18" fill="{k}" fill-opacity="0.5"/>',
            ]
    raise AssertionError(p.shape)  # pragma: no cover - the Literal type lists every shape


def render_product(product: Product) -> str:
    parts = [
        f'<svg {_SVG} viewBox="0 0 480 480" role="img" aria-label="{escape(product.name_en)}">',
        '<rect width="480" height="480" fill="#f8f3ef"/>',
        f'<circle cx="240" cy="250" r="176" fill="{product.colour}" fill-opacity="0.22"/>',
        '<ellipse cx="240" cy="412" rx="130" ry="12" fill="#000000" fill-opacity="0.07"/>',
        *_shape(product),
        "</svg>",
    ]
    return "\n".join(parts) + "\n"


def drawings() -> dict[str, str]:
    """Every demo picture, keyed by its path under ``web/``."""
    files = {s.photo_url.lstrip("/"): render_avatar(s) for s in STAFF}
    files.update({p.image_url.lstrip("/"): render_product(p) for p in CATALOGUE})
    return files


def main(web_dir: Path | None = None) -> None:
    if web_dir is None:
        web_dir = WEB_DIR
    for relative, svg in drawings().items():
        target = web_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(svg, encoding="utf-8")
    sys.stdout.write(f"wrote {len(drawings())} pictures under {web_dir / 'demo'}\n")


if __name__ == "__main__":
    main()
