"""Use cases of accounts: log in, refresh, log out, client credentials, account admin."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth import throttle, two_factor
from telehealth.auth.access import (
    check_account_admin,
    check_own_account_change,
    leaves_administration,
)
from telehealth.auth.login import TokenPair
from telehealth.auth.models import (
    RefreshToken,
    Role,
    SystemClient,
    UserAccount,
)
from telehealth.auth.password_changes import set_password
from telehealth.auth.passwords import (
    check_new_password,
    hash_password,
    hash_secret,
    verify_password,
)
from telehealth.auth.principal import Caller, Principal
from telehealth.auth.revocation import end_sessions, reset_sessions
from telehealth.auth.scopes import parse_scopes
from telehealth.auth.tokens import issue_access_token
from telehealth.db import table_of
from telehealth.errors import (
    Conflict,
    DuplicateEntry,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from telehealth.settings import Settings
from telehealth.timeutil import utcnow


async def change_password(
    session: AsyncSession, settings: Settings, caller: Caller, current: str, new: str
) -> None:
    """The owner chooses a new password; every session of the account ends."""
    if caller.principal.kind != "user":
        raise PermissionDenied("System clients have secrets, not passwords")
    user = await session.get(UserAccount, caller.principal.id)
    if user is None:
        raise NotAuthenticated("The account no longer exists")
    if not verify_password(user.password_hash, current):
        raise InvalidInput.for_field("current_password", "is not your current password")
    if new == current:
        raise InvalidInput.for_field("new_password", "must differ from the current password")
    await set_password(session, settings, user, new, chosen_by_owner=True)
    await end_sessions(session, user)
    session.add(user)


async def client_token(
    session: AsyncSession,
    settings: Settings,
    client_id: str,
    secret: str,
    scope: str | None,
) -> TokenPair:
    """OAuth 2.0 client credentials: scopes are those granted, narrowed to those asked for."""
    client = (
        await session.exec(select(SystemClient).where(SystemClient.client_id == client_id))
    ).first()
    if (
        not verify_password(client.secret_hash if client else None, secret)
        or client is None
        or not client.active
    ):
        raise NotAuthenticated("Unknown client or wrong client secret")
    granted = parse_scopes(client.scopes)
    if scope:
        try:
            asked = parse_scopes(scope)
        except ValueError as exc:
            raise InvalidInput.for_field("scope", str(exc)) from exc
        if not asked <= granted:
            raise InvalidInput.for_field("scope", "asks for more than the client was granted")
        granted = asked
    principal = Principal(
        kind="client",
        id=client.id,
        name=client.name,
        organization_id=client.organization_id,
        scopes=granted,
    )
    access = issue_access_token(principal, settings.signing_key, settings.access_token_ttl_s)
    return TokenPair(access, settings.access_token_ttl_s, None, principal)


@dataclass(frozen=True)
class NewAccount:
    username: str
    password: str
    display_name: str
    role: Role
    organization_id: uuid.UUID
    practitioner_id: uuid.UUID | None = None
    language: str = "vi"
    email: str | None = None
    # Someone other than the person chose the password (an administrator, the command
    # line): it must be changed at the first login. Only the demo data says otherwise.
    must_change_password: bool = True


async def _account_refers_to(session: AsyncSession, column: str, value: uuid.UUID) -> bool:
    """Whether the row an account's foreign key would point to exists. Asked through the key
    itself, so auth (which every area imports) needs not import the directory's tables."""
    (key,) = table_of(UserAccount).c[column].foreign_keys
    found = await session.execute(sa_select(key.column).where(key.column == value))
    return found.first() is not None


async def create_account(
    session: AsyncSession, settings: Settings, caller: Caller | None, new: NewAccount
) -> UserAccount:
    """Create a person's account; ``caller`` is None only for the command line."""
    if caller is not None:
        check_account_admin(caller.principal)
    if not await _account_refers_to(session, "organization_id", new.organization_id):
        raise InvalidInput.for_field("organization_id", "no such organization")
    if new.practitioner_id is not None and not await _account_refers_to(
        session, "practitioner_id", new.practitioner_id
    ):
        raise InvalidInput.for_field("practitioner_id", "no such practitioner")
    if (
        await session.exec(select(UserAccount.id).where(UserAccount.username == new.username))
    ).first():
        raise DuplicateEntry(f"The username '{new.username}' is taken")
    check_new_password(
        settings,
        new.password,
        username=new.username,
        two_factor=await two_factor.signs_in_with_it(session, settings, None, new.role),
    )
    user = UserAccount(
        username=new.username,
        password_hash=hash_password(new.password),
        must_change_password=new.must_change_password,
        display_name=new.display_name,
        role=new.role,
        organization_id=new.organization_id,
        practitioner_id=new.practitioner_id,
        language=new.language,
        email=new.email,
    )
    session.add(user)
    await session.flush()
    return user


async def list_accounts(
    session: AsyncSession, caller: Caller, *, limit: int, offset: int
) -> Sequence[UserAccount]:
    check_account_admin(caller.principal)
    result = await session.exec(
        select(UserAccount).order_by(col(UserAccount.username)).offset(offset).limit(limit)
    )
    return result.all()


LAST_ADMINISTRATOR = (
    "This is the last active administrator account: give another account the administrator "
    "role (or reactivate one) first, then retry"
)


async def _keep_an_administrator(session: AsyncSession, leaving: uuid.UUID) -> None:
    """Refuse to take ``leaving`` out of office if it is the last active administrator.

    Administrators manage the whole service (not one facility), so one must stay. The check is
    made under a lock on the active administrators' rows (taken in id order, so two such
    changes never deadlock): when two administrators demote each other at once, the second
    waits, then sees the first's change and is refused. SQLite needs no lock: every
    transaction there starts with BEGIN IMMEDIATE, so writers already run one at a time.
    """
    remaining = await session.exec(
        select(UserAccount.id)
        .where(UserAccount.role == Role.ADMINISTRATOR, col(UserAccount.active).is_(True))
        .order_by(col(UserAccount.id))
        .with_for_update()
    )
    if leaving in (ids := set(remaining.all())) and not ids - {leaving}:
        raise Conflict(LAST_ADMINISTRATOR)


async def update_account(
    session: AsyncSession,
    settings: Settings,
    caller: Caller,
    user_id: uuid.UUID,
    *,
    active: bool | None = None,
    role: Role | None = None,
    unlock: bool = False,
    new_password: str | None = None,
    language: str | None = None,
    reset_two_factor: bool = False,
) -> UserAccount:
    check_account_admin(caller.principal)
    check_own_account_change(caller.principal, user_id, active, role)
    if leaves_administration(active, role):
        await _keep_an_administrator(session, user_id)
    # Read after the lock above, so that the account is as the last such change left it.
    user = await session.get(UserAccount, user_id, populate_existing=True)
    if user is None:
        raise NotFound("No such account")
    if (
        (active is False and user.active)
        or (role is not None and role != user.role)
        or new_password is not None
    ):
        await reset_sessions(session, user)
    if active and not user.active:
        user.last_active_at = utcnow()  # enabled again: not idle, or the daily job disables it
    if active is not None:
        user.active = active
    if role is not None:
        user.role = role
    if language is not None:
        user.language = language
    if unlock:
        user.locked_until = None
        await throttle.unlock(session, user.username)
    if new_password is not None:
        await set_password(session, settings, user, new_password, chosen_by_owner=False)
    if reset_two_factor:
        await two_factor.reset(session, user)
    if active is False or new_password is not None:
        await session.exec(
            update(RefreshToken)
            .where(col(RefreshToken.user_id) == user.id)
            .where(col(RefreshToken.revoked_at).is_(None))
            .values(revoked_at=utcnow())
        )
    user.updated_at = utcnow()
    session.add(user)
    return user


async def create_client(
    session: AsyncSession,
    caller: Caller | None,
    *,
    client_id: str,
    name: str,
    scopes: str,
    organization_id: uuid.UUID | None = None,
    secret: str | None = None,
) -> tuple[SystemClient, str]:
    """A new system client and its secret, which is shown this once and stored hashed
    (``secret`` is given only by the demo data, so that the README can name it)."""
    if caller is not None:
        check_account_admin(caller.principal)
    try:
        normalised = parse_scopes(scopes)
    except ValueError as exc:
        raise InvalidInput.for_field("scopes", str(exc)) from exc
    if not normalised:
        raise InvalidInput.for_field("scopes", "at least one scope is needed")
    if (
        await session.exec(select(SystemClient.id).where(SystemClient.client_id == client_id))
    ).first():
        raise DuplicateEntry(f"The client id '{client_id}' is taken")
    secret = secret or secrets.token_urlsafe(32)
    client = SystemClient(
        client_id=client_id,
        name=name,
        scopes=" ".join(sorted(normalised)),
        secret_hash=hash_secret(secret),
        organization_id=organization_id,
    )
    session.add(client)
    await session.flush()
    return client, secret
