"""The text of an uploaded CSV file: its encoding detected (or chosen), and the full-width
digits Japanese spreadsheets are full of made ASCII in the columns that are parsed as numbers,
dates, phone numbers or e-mail addresses.

Detection, a small rule rather than a statistical guess (a guess can read a CP932 file as
something else without an error, and a shop export is always one of these):

1. a byte-order mark decides: ``EF BB BF`` → UTF-8, ``FF FE`` / ``FE FF`` → UTF-16;
2. otherwise the file is UTF-8 if it decodes as strict UTF-8 (a CP932 file of Japanese text
   practically never does: its lead bytes 0x81–0x9F are UTF-8 continuation bytes);
3. otherwise CP932 (Windows' Shift_JIS, what Excel writes in Japan; a superset of JIS X 0208
   Shift_JIS with the NEC and IBM extensions such as ① and ㈱).

A file that is none of these is refused with the line that cannot be decoded and the
encodings tried; an operator can then name the encoding (``--encoding`` on the CLI, the
``encoding`` field of the upload). ``shift_jis`` and ``sjis`` are read as CP932: files labelled
Shift_JIS in Japan are CP932 in practice, and CP932 decodes every valid Shift_JIS file alike.
"""

from __future__ import annotations

import codecs
import unicodedata
from dataclasses import dataclass

from livedesk.kit.errors import ValidationFailed

# Names an operator may give, and the codec each is read with.
ENCODINGS = {
    "utf-8": "utf-8-sig",
    "utf8": "utf-8-sig",
    "utf-8-sig": "utf-8-sig",
    "cp932": "cp932",
    "windows-31j": "cp932",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "utf-16": "utf-16",
    "utf-16le": "utf-16-le",
    "utf-16-le": "utf-16-le",
    "utf-16be": "utf-16-be",
    "utf-16-be": "utf-16-be",
    "euc-jp": "euc-jp",
}
# What the detected or chosen codec is called in messages and job summaries.
LABELS = {
    "utf-8-sig": "UTF-8",
    "cp932": "CP932 (Shift_JIS)",
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16LE",
    "utf-16-be": "UTF-16BE",
    "euc-jp": "EUC-JP",
}
# Columns read as numbers, dates, phone numbers or addresses: full-width forms become ASCII
# (NFKC: "０９０－１２３４" → "090-1234", "１２" → "12", "ｔａｒｏ＠ｅｘａｍｐｌｅ．ｊｐ" →
# "taro@example.jp"). Names, descriptions and SKUs are left exactly as written.
NORMALISED_COLUMNS = frozenset(
    {
        "email",
        "phone",
        "phone_region",
        "quantity",
        "unit_price_minor",
        "total_minor",
        "ordered_at",
        "occurred_at",
        "currency",
        "locale",
    }
)


@dataclass(frozen=True)
class Decoded:
    text: str
    codec: str

    @property
    def label(self) -> str:
        return LABELS.get(self.codec, self.codec)


def codec_for(name: str | None) -> str | None:
    """The codec for an operator's encoding name (None: detect); ValidationFailed for a name
    not offered."""
    if name is None or not name.strip() or name.strip().lower() == "auto":
        return None
    codec = ENCODINGS.get(name.strip().lower())
    if codec is None:
        raise ValidationFailed(
            f"Unknown encoding {name!r}; expected auto or one of {sorted(set(ENCODINGS))}",
            code="bad_encoding",
            details={"encoding": name},
        )
    return codec


def _line_of(raw: bytes, codec: str, offset: int) -> int:
    """The 1-based line holding byte ``offset`` (counted in the decoded text, so a UTF-16
    newline counts as one)."""
    return raw[:offset].decode(codec, errors="replace").count("\n") + 1


def _strict(raw: bytes, codec: str) -> str | UnicodeDecodeError:
    try:
        return raw.decode(codec)
    except UnicodeDecodeError as exc:
        return exc


def decode(raw: bytes, encoding: str | None = None) -> Decoded:
    """The file's text, by the chosen encoding or the detection rule above; ValidationFailed
    (``bad_encoding``) naming the line and the encoding(s) when it cannot be decoded."""
    chosen = codec_for(encoding)
    if chosen is not None:
        tried = [chosen]
    elif raw.startswith(codecs.BOM_UTF8):
        tried = ["utf-8-sig"]
    elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        tried = ["utf-16"]
    else:
        tried = ["utf-8-sig", "cp932"]
    failures: list[tuple[str, int, int]] = []
    for codec in tried:
        result = _strict(raw, codec)
        if isinstance(result, str):
            return Decoded(result, codec)
        failures.append((codec, _line_of(raw, codec, result.start), result.start))
    parts = [f"as {LABELS[codec]} at line {line} (byte {offset})" for codec, line, offset in failures]
    hint = ""
    if chosen is None and b"\x00" in raw[:4096]:
        hint = " It looks like UTF-16 without a byte-order mark: choose utf-16-le or utf-16-be."
    elif chosen is None:
        hint = " Choose its encoding (utf-8, cp932, utf-16, euc-jp)."
    codec, line, _ = failures[-1]
    raise ValidationFailed(
        f"The file cannot be decoded {' nor '.join(parts)}.{hint}",
        code="bad_encoding",
        details={"line": line, "encodings": [LABELS[c] for c, _, _ in failures]},
    )


def normalise(row: dict[str, str]) -> dict[str, str]:
    """The row with full-width forms made ASCII in the parsed columns (see above)."""
    return {
        key: unicodedata.normalize("NFKC", value) if key in NORMALISED_COLUMNS and value else value
        for key, value in row.items()
    }
