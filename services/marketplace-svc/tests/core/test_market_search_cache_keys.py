"""Attack: search cache poisoning (issue 11, item 4).

The attacker searches for the text ``<word>&status=sold``: nothing matches, and the empty page is
cached. If the cache key joined ``k=v`` pairs with ``&`` unescaped, a victim's search for ``<word>``
among active listings would share that key and be served the attacker's empty page.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from httpx import AsyncClient
from marketplace_svc.core.cache_keys import search_digest

URL = "/api/marketplace/listings"


async def test_a_query_text_cannot_share_the_cache_entry_of_other_filters(
    client: AsyncClient,
    create_listing: Callable[..., Awaitable[dict[str, Any]]],
    owner: uuid.UUID,
    tag: str,
) -> None:
    listing = await create_listing(owner, title=f"Phone {tag}")
    poisoned = await client.get(URL, params={"q": f"{tag}&status=active"})
    assert poisoned.status_code == 200
    assert poisoned.json()["items"] == []  # the attacker's empty page, now cached
    victim = await client.get(URL, params={"q": tag, "status": "active"})
    assert [item["id"] for item in victim.json()["items"]] == [listing["id"]]


def test_the_digest_is_of_the_canonical_json() -> None:
    assert search_digest({"q": "x&status=sold"}) != search_digest({"q": "x", "status": "sold"})
    assert search_digest({"q": "a", "limit": 20}) == search_digest({"limit": 20, "q": "a", "status": None})
    assert search_digest({"q": "1"}) != search_digest({"q": 1})
