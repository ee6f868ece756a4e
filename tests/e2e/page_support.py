"""Waiting on a page under the service's Content-Security-Policy."""

from __future__ import annotations

import asyncio
from typing import Any

from playwright.async_api import Error, Page


async def _value(page: Page, expression: str) -> Any:
    try:
        return await page.evaluate(expression)
    except Error as exc:
        if "context was destroyed" in str(exc):
            return None  # the page is navigating: ask the next one
        raise


async def wait_until(page: Page, expression: str, *, timeout_s: float = 15) -> Any:
    """The value of ``expression`` in the page once it is truthy, across reloads. Playwright's
    ``wait_for_function`` evaluates its predicate with eval inside the page, which the policy
    forbids (no 'unsafe-eval'); ``page.evaluate`` goes through the devtools protocol instead."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not (value := await _value(page, expression)):
        if loop.time() > deadline:
            raise TimeoutError(f"{expression!r} still false after {timeout_s} s")
        await asyncio.sleep(0.1)
    return value
