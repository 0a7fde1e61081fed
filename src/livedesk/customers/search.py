"""Customer search by name, e-mail, phone number or shop customer id.

Each profile has a few normalised search terms (``shopper_search_terms``): its name's words
and the whole name without spaces, its e-mail and the e-mail's local part, its phone number's
digits in international and national form, its shop ids. A query is normalised the same way
and looked up as a *prefix*: ``term >= q AND term < q + U+FFFF`` is a range scan of
``ix_shopper_search_terms_term`` on SQLite and PostgreSQL alike (``LIKE 'q%'`` would not use
the index on SQLite, whose LIKE ignores case). Names in scripts written without spaces
(Japanese) also get their suffixes indexed, so 「さくら」 finds 「田中さくら」.

The terms are written by whoever changes a profile (``index_shopper``) in the same
transaction; ``reindex_missing`` fills them for rows written directly (demo data, old data).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from livedesk.models import IdentityKind, Shopper, ShopperIdentity
from livedesk.models.integrations import ShopperSearchTerm

MIN_QUERY = 2
MAX_QUERY = 100
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
TERM_MAX = 254
# Suffixes of unspaced names are indexed up to this length of name (a name, not an essay).
_SUFFIX_NAME_MAX = 16
_HIGH = "\uffff"
_SEPARATORS = re.compile(r"[\s\u3000・･,、.．]+")


def normalize(text: str) -> str:
    """NFKC (full-width → half-width, ｶﾅ → カナ), case-folded, trimmed."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


def _has_unspaced_script(word: str) -> bool:
    # CJK ideographs, kana and hangul: names written without spaces between their parts.
    return any(ord(ch) >= 0x2E80 for ch in word)


def name_terms(name: str) -> set[str]:
    words = [w for w in _SEPARATORS.split(normalize(name)) if w]
    terms = set(words)
    if len(words) > 1:
        terms.add("".join(words))
    for word in words:
        if _has_unspaced_script(word) and len(word) <= _SUFFIX_NAME_MAX:
            terms.update(word[i:] for i in range(1, len(word)))
    return terms


def phone_terms(e164: str) -> set[str]:
    digits = re.sub(r"\D", "", e164)
    terms = {digits}
    # +81 90… is dialled 090… at home: index the national form for Japanese numbers.
    if digits.startswith("81"):
        terms.add("0" + digits[2:])
    return terms


def terms_for(
    name: str, identities: Iterable[tuple[IdentityKind, str]], *, other_names: Iterable[str] = ()
) -> set[str]:
    """All search terms of a profile with this name (and ``other_names``, such as the Latin
    spelling of a Japanese name a shop sends as ``name_latin``) and these (normalised)
    identities."""
    terms = name_terms(name)
    for other in other_names:
        terms |= name_terms(other)
    for kind, value in identities:
        if kind is IdentityKind.EMAIL:
            terms.add(value)
            terms.add(value.split("@", 1)[0])
        elif kind is IdentityKind.PHONE:
            terms |= phone_terms(value)
        else:
            terms.add(normalize(value))
    return {t[:TERM_MAX] for t in terms if t}


def term_rows(shopper_id: uuid.UUID, terms: Iterable[str]) -> list[ShopperSearchTerm]:
    return [ShopperSearchTerm(id=uuid.uuid4(), shopper_id=shopper_id, term=t) for t in sorted(set(terms))]


def _other_names(shopper: Shopper) -> list[str]:
    latin = (shopper.attributes or {}).get("name_latin")
    return [latin] if isinstance(latin, str) else []


def add_terms(session: AsyncSession, shopper: Shopper, identities: Mapping[IdentityKind, str]) -> None:
    """Index a profile just created (and flushed: the terms point at its row)."""
    session.add_all(
        term_rows(
            shopper.id, terms_for(shopper.display_name, identities.items(), other_names=_other_names(shopper))
        )
    )


async def index_shopper(session: AsyncSession, shopper_id: uuid.UUID) -> None:
    """Rewrite one profile's search terms from its current name and identities (caller's
    transaction). Call after changing a profile's name or identities."""
    await session.flush()
    shopper = await session.get(Shopper, shopper_id)
    await session.execute(
        delete(ShopperSearchTerm)
        .where(ShopperSearchTerm.shopper_id == shopper_id)
        .execution_options(synchronize_session=False)
    )
    if shopper is None or shopper.merged_into_id is not None:
        return
    rows = await session.execute(
        select(ShopperIdentity.kind, ShopperIdentity.value).where(ShopperIdentity.shopper_id == shopper_id)
    )
    identities = [(kind, value) for kind, value in rows]
    session.add_all(
        term_rows(shopper_id, terms_for(shopper.display_name, identities, other_names=_other_names(shopper)))
    )


async def reindex_missing(session: AsyncSession, batch: int = 1000) -> int:
    """Index live profiles that have no search terms yet; how many were indexed."""
    indexed = select(ShopperSearchTerm.shopper_id)
    total = 0
    while True:
        ids = (
            await session.scalars(
                select(Shopper.id)
                .where(Shopper.merged_into_id.is_(None), Shopper.id.not_in(indexed))
                .limit(batch)
            )
        ).all()
        if not ids:
            return total
        for shopper_id in ids:
            await index_shopper(session, shopper_id)
        await session.flush()
        total += len(ids)


@dataclass(frozen=True)
class SearchHit:
    shopper: Shopper
    matched: list[str]


def query_terms(query: str) -> list[str]:
    """What a typed query is looked up as: the normalised text, and for something that looks
    like a phone number its digits (``090-1234-5678`` → ``09012345678``, ``+81 90…`` →
    ``8190…``)."""
    text = normalize(query)
    terms = [_SEPARATORS.sub("", text)] if " " in text or "\u3000" in text else [text]
    digits = re.sub(r"\D", "", text)
    if len(digits) >= MIN_QUERY and re.fullmatch(r"[\d\s()+\-.]+", text):
        terms = [digits]
    return [t for t in dict.fromkeys(terms) if t]


async def search(session: AsyncSession, query: str, limit: int = DEFAULT_LIMIT) -> list[SearchHit]:
    """Profiles whose name, e-mail, phone number or shop id starts with ``query`` (each word
    of a name counts), best first: exact matches, then by name. One indexed range query for
    the ids, one for the profiles."""
    terms = query_terms(query)
    if not terms or len(terms[0]) < MIN_QUERY:
        return []
    matched: dict[uuid.UUID, list[str]] = {}
    exact: set[uuid.UUID] = set()
    for term in terms:
        rows = (
            await session.execute(
                select(ShopperSearchTerm.shopper_id, ShopperSearchTerm.term)
                .where(ShopperSearchTerm.term >= term, ShopperSearchTerm.term < term + _HIGH)
                .order_by(ShopperSearchTerm.term)
                .limit(limit * 4)
            )
        ).all()
        for shopper_id, found in rows:
            matched.setdefault(shopper_id, []).append(found)
            if found == term:
                exact.add(shopper_id)
    if not matched:
        return []
    shoppers = await _load(session, list(matched))
    shoppers.sort(key=lambda s: (s.id not in exact, normalize(s.display_name), str(s.id)))
    return [SearchHit(s, matched[s.id]) for s in shoppers[:limit]]


async def _load(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Shopper]:
    rows = await session.scalars(select(Shopper).where(Shopper.id.in_(ids), Shopper.merged_into_id.is_(None)))
    return list(rows.all())
