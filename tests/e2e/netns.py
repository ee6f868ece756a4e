"""A throw-away network namespace holding only `lo`, for browser and TURN tests.

Creating one needs root (CAP_SYS_ADMIN) and `ip`; elsewhere the tests that need it skip, except
in CI (TELEHEALTH_TEST_REQUIRE_POSTGRES=1 marks CI), where that is a failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

IN_CI = os.environ.get("TELEHEALTH_TEST_REQUIRE_POSTGRES") == "1" or bool(os.environ.get("CI"))


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@contextmanager
def loopback_namespace() -> Iterator[list[str]]:
    """Yields the command prefix that runs a program inside the namespace."""
    if shutil.which("ip") is None:
        unavailable("the `ip` command (iproute2) is not installed")
    name = f"th-{secrets.token_hex(4)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=False)
    if made.returncode != 0:
        unavailable(f"cannot create a network namespace: {made.stderr.strip()}")
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)
