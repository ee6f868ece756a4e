"""Back-off after failed logins, by source address and by (name, source address).

After ``login_max_failures`` failures from one address to one name, that address is shut out
of that name; after ``login_address_max_failures`` failures from one address to any names, it
is shut out of all of them. Either lasts ``login_lockout_s``, and failures are forgotten
``login_lockout_s`` after the last one. The owner signing in from elsewhere is never shut out
by someone else's guesses (the failures that lock an account everywhere would let anyone lock
out the administrator). Names that do not exist are counted the same way, so the answers
never tell which accounts exist.

The counts are rows (``LoginThrottle``) changed by single statements, so that every process
sees the same failures and parallel guesses are all counted.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta

from sqlalchemy import case, delete, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import LoginThrottle, UserAccount
from telehealth.db import dialect_insert
from telehealth.settings import Settings
from telehealth.timers.handlers import TimerCall
from telehealth.timeutil import utcnow

UNKNOWN_SOURCE = "unknown"


def source_of(ip: str | None) -> str:
    """What failures are counted against: the address, or for IPv6 its /64, since one
    subscriber is given a whole /64 and could otherwise guess from a new address each time."""
    if not ip:
        return UNKNOWN_SOURCE
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _pair_key(source: str, username: str) -> str:
    # A newline is in neither an address nor the address-wide key: no two keys can collide.
    return f"{source}\n{username}"


async def shut_out_until(
    session: AsyncSession, source: str, username: str, now: datetime
) -> datetime | None:
    """Until when ``source`` may not log in as ``username`` (None: it may try now)."""
    locks = await session.exec(
        select(LoginThrottle.locked_until).where(
            col(LoginThrottle.key).in_([source, _pair_key(source, username)]),
            col(LoginThrottle.locked_until) > now,
        )
    )
    return max((until for until in locks.all() if until is not None), default=None)


async def _count(
    session: AsyncSession,
    settings: Settings,
    key: str,
    source: str,
    username: str | None,
    now: datetime,
) -> int:
    """One more failure under ``key``, in one statement; returns the count."""
    forgotten = now - timedelta(seconds=settings.login_lockout_s)
    stmt = dialect_insert(session, LoginThrottle).values(
        key=key, address=source, username=username, failures=1, last_failure_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "failures": case(
                (col(LoginThrottle.last_failure_at) < forgotten, 1),
                else_=col(LoginThrottle.failures) + 1,
            ),
            "last_failure_at": now,
        },
    ).returning(col(LoginThrottle.failures))
    return int((await session.exec(stmt)).scalar_one())


async def count_failure(
    session: AsyncSession, settings: Settings, source: str, username: str, now: datetime
) -> None:
    """Count a failed login from ``source`` as ``username``; lock what reached its limit."""
    until = now + timedelta(seconds=settings.login_lockout_s)
    counted = (
        (source, None, settings.login_address_max_failures),
        (_pair_key(source, username), username, settings.login_max_failures),
    )
    for key, name, limit in counted:
        if await _count(session, settings, key, source, name, now) < limit:
            continue
        await session.exec(
            update(LoginThrottle)
            .where(col(LoginThrottle.key) == key)
            .values(locked_until=until, failures=0)
        )
        if name is not None:  # shown to administrators; no row when the name is unknown
            await session.exec(
                update(UserAccount)
                .where(col(UserAccount.username) == name)
                .values(locked_until=until)
            )


async def forget_failures(session: AsyncSession, source: str, username: str) -> None:
    """A successful login clears its (name, address) count, never the address-wide one (or
    a guesser holding one account could clear it between guesses at others)."""
    await session.exec(
        delete(LoginThrottle).where(col(LoginThrottle.key) == _pair_key(source, username))
    )


async def unlock(session: AsyncSession, username: str) -> None:
    """An administrator lets every address try ``username`` again."""
    await session.exec(delete(LoginThrottle).where(col(LoginThrottle.username) == username))


async def forget_old_failures(session: AsyncSession, call: TimerCall, settings: Settings) -> None:
    """Daily: drop the rows whose failures are forgotten and whose lock is over (a lock ends
    ``login_lockout_s`` after the failure that set it)."""
    cutoff = utcnow() - timedelta(seconds=settings.login_lockout_s)
    await session.exec(delete(LoginThrottle).where(col(LoginThrottle.last_failure_at) < cutoff))
