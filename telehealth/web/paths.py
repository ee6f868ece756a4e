"""Page paths reachable without a session: the login page and what it needs."""

from __future__ import annotations

PUBLIC_PAGE_PATHS = ["^/login$", "^/session/(refresh|logout)$", "^/lang/"]
