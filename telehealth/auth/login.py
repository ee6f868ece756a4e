"""Signing in as a person: the password, then a second factor where the account has one
(``telehealth.auth.two_factor``); refreshing and ending a session.

A right password for an account with an authenticator gives a short-lived challenge, not
tokens; the tokens come with the code (``complete_login``). A person whose role must use a
second factor and who has not enrolled gets a session that serves only to enrol. Failed codes
count toward the same back-off as failed passwords (``telehealth.auth.throttle``), so that a
stolen password does not open six-digit guessing.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth import throttle, two_factor
from telehealth.auth.audit import Actor, append_audit, audit_row
from telehealth.auth.models import AuditOutcome, RefreshToken, UserAccount
from telehealth.auth.passwords import verify_password
from telehealth.auth.principal import Principal, RequestOrigin
from telehealth.auth.tokens import hash_refresh_token, issue_access_token, new_refresh_token
from telehealth.errors import AccountLocked, NotAuthenticated, TelehealthError
from telehealth.settings import Settings
from telehealth.timeutil import utcnow


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str | None
    principal: Principal


@dataclass(frozen=True)
class LoginOutcome:
    """A login either gives tokens or a refusal; a refusal must still be committed
    (it counts toward lockout), so it is returned rather than raised."""

    tokens: TokenPair | None = None
    refusal: TelehealthError | None = None
    # The password was right and the account has an authenticator: send the code with this.
    challenge: str | None = None


def principal_of(user: UserAccount, *, must_enrol_two_factor: bool = False) -> Principal:
    return Principal(
        kind="user",
        id=user.id,
        name=user.display_name,
        role=user.role,
        organization_id=user.organization_id,
        practitioner_id=user.practitioner_id,
        language=user.language,
        must_change_password=user.must_change_password,
        must_enrol_two_factor=must_enrol_two_factor,
    )


async def _issue_user_tokens(
    session: AsyncSession, settings: Settings, user: UserAccount, *, enrolled: bool | None = None
) -> TokenPair:
    """``enrolled``: whether the account has an authenticator, if the caller knows already."""
    must_enrol = two_factor.required_for(settings, user.role) and not (
        enrolled if enrolled is not None else await two_factor.is_enrolled(session, user.id)
    )
    principal = principal_of(user, must_enrol_two_factor=must_enrol)
    user.last_active_at = utcnow()  # the idle-account clock (telehealth.auth.idle)
    session.add(user)
    refresh, refresh_hash = new_refresh_token()
    session.add(
        RefreshToken(
            token_hash=refresh_hash,
            user_id=user.id,
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_s),
        )
    )
    access = issue_access_token(principal, settings.signing_key, settings.access_token_ttl_s)
    return TokenPair(access, settings.access_token_ttl_s, refresh, principal)


def _login_event(
    user_id: uuid.UUID | None,
    name: str,
    outcome: AuditOutcome,
    where: RequestOrigin,
    detail: str | None = None,
) -> list[dict[str, object]]:
    """A login's audit row, for ``append_audit``."""
    account = None if user_id is None else str(user_id)
    return [
        audit_row(
            Actor("user", account, name),
            "login",
            "UserAccount",
            account,
            outcome,
            origin=where,
            detail=detail,
        )
    ]


def _too_many_failures(now: datetime, until: datetime) -> AccountLocked:
    """The one answer while shut out, whether or not the name exists."""
    wait = math.ceil((until - now).total_seconds())
    return AccountLocked(
        f"Too many failed logins from your address: try again in {math.ceil(wait / 60)} "
        "minute(s), or ask an administrator",
        retry_after_s=wait,
    )


async def log_in(
    session: AsyncSession,
    settings: Settings,
    username: str,
    password: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> LoginOutcome:
    """Check a password, backing off by source address (see ``telehealth.auth.throttle``).

    Unknown names, inactive accounts and wrong passwords get the same answer after the same
    work (a hash is verified for each), and are counted the same way.
    """
    now = utcnow()
    where = RequestOrigin(ip, user_agent, request_id)
    source = throttle.source_of(ip)
    user = (await session.exec(select(UserAccount).where(UserAccount.username == username))).first()
    known = user if user is not None and user.active else None
    user_id = None if known is None else known.id
    until = await throttle.shut_out_until(session, source, username, now)
    if until is not None:
        await append_audit(
            session, _login_event(user_id, username, AuditOutcome.DENIED, where, "throttled")
        )
        return LoginOutcome(refusal=_too_many_failures(now, until))
    password_hash = None if known is None else known.password_hash
    if not verify_password(password_hash, password) or known is None:
        await throttle.count_failure(session, settings, source, username, now)
        reason = "wrong password" if known else "unknown or inactive account"
        await append_audit(
            session, _login_event(user_id, username, AuditOutcome.DENIED, where, reason)
        )
        return LoginOutcome(refusal=NotAuthenticated("Wrong username or password"))
    if await two_factor.is_enrolled(session, known.id):
        # Failures are forgotten only once the code is right too.
        await append_audit(
            session,
            _login_event(known.id, username, AuditOutcome.SUCCESS, where, "password; code asked"),
        )
        return LoginOutcome(challenge=two_factor.issue_challenge(settings, known))
    return await _logged_in(session, settings, known, where, enrolled=False)


async def _logged_in(
    session: AsyncSession,
    settings: Settings,
    user: UserAccount,
    where: RequestOrigin,
    *,
    enrolled: bool,
    detail: str | None = None,
) -> LoginOutcome:
    await throttle.forget_failures(session, throttle.source_of(where.ip), user.username)
    await append_audit(
        session, _login_event(user.id, user.username, AuditOutcome.SUCCESS, where, detail)
    )
    return LoginOutcome(tokens=await _issue_user_tokens(session, settings, user, enrolled=enrolled))


async def complete_login(
    session: AsyncSession,
    settings: Settings,
    challenge: str,
    code: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> LoginOutcome:
    """The second step: the challenge from a right password, and a code from the app or a
    recovery code. Wrong codes are counted as wrong passwords are."""
    now = utcnow()
    where = RequestOrigin(ip, user_agent, request_id)
    user = await session.get(UserAccount, two_factor.read_challenge(settings, challenge))
    if user is None or not user.active:
        raise NotAuthenticated("The account no longer exists or is disabled")
    source = throttle.source_of(ip)
    until = await throttle.shut_out_until(session, source, user.username, now)
    if until is not None:
        await append_audit(
            session, _login_event(user.id, user.username, AuditOutcome.DENIED, where, "throttled")
        )
        return LoginOutcome(refusal=_too_many_failures(now, until))
    accepted = await two_factor.check_second_factor(session, settings, user, code)
    if accepted is None:
        await throttle.count_failure(session, settings, source, user.username, now)
        await append_audit(
            session,
            _login_event(user.id, user.username, AuditOutcome.DENIED, where, "wrong code"),
        )
        return LoginOutcome(
            refusal=NotAuthenticated(
                "Wrong or already used code: type the six digits the app shows now, "
                "or one of your recovery codes"
            )
        )
    detail = "recovery code" if accepted == "recovery code" else None
    return await _logged_in(session, settings, user, where, enrolled=True, detail=detail)


async def refresh(session: AsyncSession, settings: Settings, token: str) -> TokenPair:
    """Exchange a refresh token for new tokens; the old one is spent (rotation)."""
    now = utcnow()
    spent = (
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.token_hash) == hash_refresh_token(token))
            .where(col(RefreshToken.revoked_at).is_(None))
            .where(col(RefreshToken.expires_at) > now)
            .values(revoked_at=now)
            .returning(col(RefreshToken.user_id))
        )
    ).scalar_one_or_none()
    if spent is None:
        raise NotAuthenticated("The refresh token is expired, revoked or unknown; log in again")
    user = await session.get(UserAccount, spent)
    # Not refused while some address is shut out of the account: that is someone else's
    # guessing, and must not end the owner's sessions.
    if user is None or not user.active:
        raise NotAuthenticated("The account is disabled; log in again")
    return await _issue_user_tokens(session, settings, user)


async def log_out(session: AsyncSession, token: str, *, owner: uuid.UUID | None = None) -> None:
    """Revoke a refresh token. Over the API the caller names it, so only their own is revoked
    (``owner``); a page's session cookie is proof of possession by itself."""
    statement = (
        update(RefreshToken)
        .where(col(RefreshToken.token_hash) == hash_refresh_token(token))
        .where(col(RefreshToken.revoked_at).is_(None))
    )
    if owner is not None:
        statement = statement.where(col(RefreshToken.user_id) == owner)
    await session.exec(statement.values(revoked_at=utcnow()))
