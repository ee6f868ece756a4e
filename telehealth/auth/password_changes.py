"""Giving an existing account a new password: the rules, the account's recent passwords
(``password_history``), and whether the owner must change it at the next login."""

from __future__ import annotations

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth import two_factor
from telehealth.auth.models import PasswordHistory, UserAccount
from telehealth.auth.passwords import (
    check_new_password,
    check_not_reused,
    hash_password,
)
from telehealth.settings import Settings
from telehealth.timeutil import utcnow


async def _recent_hashes(session: AsyncSession, settings: Settings, user: UserAccount) -> list[str]:
    """The current hash and the earlier ones that ``password_history`` still covers."""
    earlier = await session.exec(
        select(PasswordHistory.password_hash)
        .where(PasswordHistory.user_id == user.id)
        .order_by(col(PasswordHistory.replaced_at).desc())
        .limit(settings.password_history - 1)
    )
    return [user.password_hash, *earlier.all()]


async def _forget_older_passwords(
    session: AsyncSession, settings: Settings, user: UserAccount
) -> None:
    kept = (
        select(PasswordHistory.id)
        .where(PasswordHistory.user_id == user.id)
        .order_by(col(PasswordHistory.replaced_at).desc())
        .limit(settings.password_history - 1)
    )
    await session.exec(
        delete(PasswordHistory)
        .where(col(PasswordHistory.user_id) == user.id)
        .where(col(PasswordHistory.id).not_in(kept))
    )


async def set_password(
    session: AsyncSession,
    settings: Settings,
    user: UserAccount,
    new: str,
    *,
    chosen_by_owner: bool,
    field: str = "new_password",
) -> None:
    """Give an existing account a new password, if it meets the rules and is not one of its
    recent ones. One chosen by someone else (an administrator's reset) must be changed by the
    owner at their next login."""
    with_code = await two_factor.signs_in_with_it(session, settings, user.id, user.role)
    check_new_password(settings, new, username=user.username, two_factor=with_code, field=field)
    check_not_reused(settings, new, await _recent_hashes(session, settings, user), field=field)
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    await session.flush()
    await _forget_older_passwords(session, settings, user)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.must_change_password = not chosen_by_owner
