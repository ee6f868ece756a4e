"""Page paths reachable without a session: the login page and what it needs."""

from __future__ import annotations

PUBLIC_PAGE_PATHS = ["^/login$", "^/session/(refresh|logout)$", "^/lang/"]
# Where a person whose password someone else chose is sent until they choose their own.
CHANGE_PASSWORD_PAGE = "/account/password"  # noqa: S105  (a path, not a secret)
