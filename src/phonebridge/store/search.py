"""Search across what the store holds: one FTS5 query per kind, merged newest first.

A kind is a function `(connection, fts_match, limit) -> [{"kind", "device", "id", "date",
"snippet"}]` listed in KINDS; adding messages (or anything else indexed with FTS5) is one function
and one entry. User text becomes an FTS5 query of quoted terms, each a prefix (`"ali"*` finds
"Alice"); the tables use unicode61 with remove_diacritics 2, so "cafe" finds "Café".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .database import Database
from .messages import search_messages
from .notifications import search_notifications

SearchKind = Callable[[Any, str, int], list[dict[str, Any]]]
"""(sqlite3 connection, FTS5 match, limit) -> results; see notifications.search_notifications."""

KINDS: dict[str, SearchKind] = {
    "notification": search_notifications,
    "message": search_messages,
}
"""kind name -> its query. One line per kind."""

MAX_RESULTS = 200
_TERM = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str | None:
    """User text -> an FTS5 MATCH expression (every word, as a prefix); None if no word."""
    terms = _TERM.findall(text)
    if not terms:
        return None
    return " ".join(f'"{term}"*' for term in terms[:16])


class SearchRepository:
    def __init__(self, db: Database, kinds: dict[str, SearchKind] | None = None) -> None:
        self._db = db
        self._kinds = dict(KINDS if kinds is None else kinds)

    @property
    def kinds(self) -> list[str]:
        return list(self._kinds)

    async def search(self, text: str, *, kinds: list[str] | None = None,
                     limit: int = MAX_RESULTS) -> list[dict[str, Any]]:
        """Results of every kind (or of `kinds`), newest first; [] for text without words."""
        match = fts_query(text)
        if match is None:
            return []
        wanted = [k for k in (kinds or self._kinds) if k in self._kinds]

        def read(conn: Any) -> list[dict[str, Any]]:
            results: list[dict[str, Any]] = []
            for kind in wanted:
                results.extend(self._kinds[kind](conn, match, limit))
            results.sort(key=lambda r: r["date"] or 0, reverse=True)
            return results[:limit]

        return await self._db.run(read)
