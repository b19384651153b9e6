"""Walking a paginated collection the way a client would: by following ``Link: rel="next"``."""

from __future__ import annotations

from typing import Any


def walk(client: Any, url: str, headers: dict[str, str], max_pages: int = 100) -> tuple[list[Any], int]:
    """Every item of every page, and the number of pages; checks the Link header on each page."""
    seen: list[Any] = []
    pages = 0
    while url:
        r = client.get(url, headers=headers)
        assert r.status_code == 200, r.get_json()
        page = r.get_json()
        seen.extend(page["items"])
        pages += 1
        if page["next_cursor"]:
            link = r.headers["Link"]
            assert link.endswith('>; rel="next"') and page["next_cursor"] in link
            url = link[1 : link.index(">")]
        else:
            assert "Link" not in r.headers
            url = None
        assert pages <= max_pages
    return seen, pages
