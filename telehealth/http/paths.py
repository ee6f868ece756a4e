"""Page paths reachable without a session: the login page and what it needs."""

from __future__ import annotations

PUBLIC_PAGE_PATHS = ["^/login$", "^/login/second-factor$", "^/session/(refresh|logout)$", "^/lang/"]
# Where a person whose password someone else chose is sent until they choose their own.
CHANGE_PASSWORD_PAGE = "/account/password"  # noqa: S105  (a path, not a secret)
# Where a person whose role needs a second factor is sent until they enrol one.
TWO_FACTOR_PAGE = "/account/two-factor"
