"""Two-factor sign-in: after the password, a code from an authenticator app (TOTP, RFC 6238:
six digits, a new one every 30 seconds), or one of ten single-use recovery codes when the
phone is lost.

Who must use it is a setting (``two_factor_required_for``: administrators and coordinators by
default, or ``all``); anyone else may turn it on. A person who must and has not enrolled yet
gets a session that serves only to enrol (``Principal.must_enrol_two_factor``, enforced with
the forced password change in ``telehealth.http.middleware``). System clients sign in with
their secret and are not concerned.

Enrolment is in two steps: a secret is made and shown (a QR code and the same in letters), and
it counts only once the owner has typed a first code from it; the recovery codes are shown
then, once. Secrets are stored encrypted with a key derived from the service's signing key
(a copy of the database alone does not give anyone the codes); recovery codes are stored as
hashes. A code is accepted at most once: the last accepted time step is kept, and a code from
that step or an earlier one is refused, so a code seen over someone's shoulder cannot be used
again. Codes from the step before and after the server's are accepted (phones' clocks drift).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

import jwt
import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from telehealth.auth.models import RecoveryCode, Role, TwoFactor, UserAccount
from telehealth.auth.passwords import verify_password
from telehealth.auth.principal import Caller
from telehealth.auth.revocation import end_sessions
from telehealth.auth.tokens import ISSUER
from telehealth.errors import Conflict, InvalidInput, NotAuthenticated, PermissionDenied
from telehealth.settings import Settings
from telehealth.timeutil import utcnow

APP_NAME = "Telehealth"  # the name an authenticator app shows beside the account
RECOVERY_CODE_COUNT = 10
CHALLENGE_TTL_S = 300  # between a right password and the code
_PENDING_FOR = timedelta(minutes=15)  # an unconfirmed secret is shown again this long
_STEP_S = 30
_CHALLENGE_TYPE = "2fa"
_ALGORITHM = "HS256"


def required_for(settings: Settings, role: Role | None) -> bool:
    """Whether people of this role must sign in with a second factor."""
    named = {name.strip() for name in settings.two_factor_required_for.split(",")}
    return "all" in named or (role is not None and role.value in named)


@lru_cache(maxsize=8)
def _cipher(signing_key: str) -> Fernet:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"telehealth two-factor secrets"
    ).derive(signing_key.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


def _sealed(settings: Settings, secret: str) -> str:
    return _cipher(settings.signing_key).encrypt(secret.encode()).decode()


def _opened(settings: Settings, sealed: str) -> str:
    try:
        return _cipher(settings.signing_key).decrypt(sealed.encode()).decode()
    except InvalidToken as exc:
        # The signing key changed since enrolment: the secret cannot be read any more.
        raise Conflict(
            "The authenticator can no longer be checked (the service's key changed): "
            "ask an administrator to reset your two-factor sign-in"
        ) from exc


def _hash_code(code: str) -> str:
    return hashlib.sha256(_normalised(code).encode()).hexdigest()


def _normalised(code: str) -> str:
    return "".join(ch for ch in code if ch.isalnum()).upper()


def _new_recovery_code() -> str:
    """Ten characters of base32 in two groups of five (50 bits): ``ABCDE-FGHIJ``."""
    letters = base64.b32encode(secrets.token_bytes(10)).decode()[:10]
    return f"{letters[:5]}-{letters[5:]}"


@dataclass(frozen=True)
class Enrolment:
    """What a person needs to add the account to an authenticator app."""

    secret: str  # base32, for typing in by hand
    uri: str  # otpauth://totp/..., what the QR code holds
    qr_svg: str  # the QR code as an inline SVG element

    @property
    def secret_in_groups(self) -> str:
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


@dataclass(frozen=True)
class TwoFactorState:
    enrolled: bool
    required: bool
    enrolled_at: datetime | None
    recovery_codes_left: int


def _enrolment(secret: str, username: str) -> Enrolment:
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=APP_NAME)
    qr = segno.make(uri, error="m")
    return Enrolment(secret, uri, qr.svg_inline(scale=5, border=2, omitsize=True, title=None))


async def _record(session: AsyncSession, user_id: uuid.UUID) -> TwoFactor | None:
    return await session.get(TwoFactor, user_id, populate_existing=True)


async def enrolled_among(session: AsyncSession, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these accounts sign in with a second factor (for administrators' lists)."""
    if not user_ids:
        return set()
    found = await session.exec(
        select(TwoFactor.user_id)
        .where(col(TwoFactor.user_id).in_(user_ids))
        .where(col(TwoFactor.confirmed_at).is_not(None))
    )
    return set(found.all())


async def is_enrolled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return user_id in await enrolled_among(session, [user_id])


async def signs_in_with_it(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID | None, role: Role | None
) -> bool:
    """Whether the account (None: one being made) signs in, or must, with a second factor:
    its password may then be shorter (``telehealth.auth.passwords.minimum_length``)."""
    if required_for(settings, role):
        return True
    return user_id is not None and await is_enrolled(session, user_id)


async def state_of(session: AsyncSession, settings: Settings, user: UserAccount) -> TwoFactorState:
    record = await _record(session, user.id)
    enrolled = record is not None and record.confirmed_at is not None
    left = 0
    if enrolled:
        left = (
            await session.exec(
                select(func.count())
                .select_from(RecoveryCode)
                .where(RecoveryCode.user_id == user.id)
                .where(col(RecoveryCode.used_at).is_(None))
            )
        ).one()
    return TwoFactorState(
        enrolled=enrolled,
        required=required_for(settings, user.role),
        enrolled_at=None if record is None else record.confirmed_at,
        recovery_codes_left=int(left),
    )


async def own_account(session: AsyncSession, caller: Caller) -> UserAccount:
    if caller.principal.kind != "user":
        raise PermissionDenied("System clients sign in with their secret, not a second factor")
    user = await session.get(UserAccount, caller.principal.id)
    if user is None or not user.active:
        raise NotAuthenticated("The account no longer exists or is disabled")
    return user


async def start_enrolment(session: AsyncSession, settings: Settings, caller: Caller) -> Enrolment:
    """A secret for the caller's authenticator app, not in force until confirmed. Asked
    again within a few minutes (a page reloaded), the same secret is shown."""
    user = await own_account(session, caller)
    record = await _record(session, user.id)
    if record is not None and record.confirmed_at is not None:
        raise Conflict(
            "Two-factor sign-in is already on for this account: turn it off first to enrol "
            "another authenticator"
        )
    if record is not None and utcnow() - record.created_at < _PENDING_FOR:
        return _enrolment(_opened(settings, record.secret), user.username)
    secret = pyotp.random_base32()
    if record is None:
        record = TwoFactor(user_id=user.id, secret=_sealed(settings, secret))
    else:
        record.secret, record.created_at = _sealed(settings, secret), utcnow()
    session.add(record)
    return _enrolment(secret, user.username)


def _accepted_step(secret: str, code: str, last_step: int | None, at: float) -> int | None:
    """The time step whose code this is (the current one or a neighbour), if it is later than
    the last one accepted."""
    digits = _normalised(code)
    if len(digits) != 6 or not digits.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    now_step = int(at // _STEP_S)
    for step in (now_step - 1, now_step, now_step + 1):
        if last_step is not None and step <= last_step:
            continue
        if hmac.compare_digest(totp.at(step * _STEP_S), digits):
            return step
    return None


async def _new_recovery_codes(session: AsyncSession, user_id: uuid.UUID) -> list[str]:
    await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODE_COUNT)]
    for code in codes:
        session.add(RecoveryCode(user_id=user_id, code_hash=_hash_code(code)))
    return codes


async def confirm_enrolment(
    session: AsyncSession, settings: Settings, caller: Caller, code: str
) -> list[str]:
    """The first code proves the app holds the secret: two-factor sign-in is on from now, the
    recovery codes are returned (shown once), and every session of the account ends."""
    user = await own_account(session, caller)
    record = await _record(session, user.id)
    if record is None or record.confirmed_at is not None:
        raise Conflict("Start the enrolment first (POST /api/auth/two-factor)")
    step = _accepted_step(_opened(settings, record.secret), code, None, time.time())
    if step is None:
        raise InvalidInput.for_field(
            "code",
            "is not the code the app shows now: check the phone's clock, and type the "
            "six digits shown for this account",
        )
    record.confirmed_at, record.last_step = utcnow(), step
    session.add(record)
    codes = await _new_recovery_codes(session, user.id)
    await end_sessions(session, user)
    caller.note("two-factor-on", "UserAccount", user.id)
    return codes


async def check_second_factor(
    session: AsyncSession, settings: Settings, user: UserAccount, code: str
) -> str | None:
    """Accept a code from the app or an unused recovery code (spending it); the kind accepted
    ("totp", "recovery code"), or None."""
    record = await _record(session, user.id)
    if record is None or record.confirmed_at is None:
        return None
    step = _accepted_step(_opened(settings, record.secret), code, record.last_step, time.time())
    if step is not None:
        # Conditional, so that two requests racing with one code cannot both pass.
        moved = await session.exec(
            update(TwoFactor)
            .where(col(TwoFactor.user_id) == user.id)
            .where((col(TwoFactor.last_step).is_(None)) | (col(TwoFactor.last_step) < step))
            .values(last_step=step)
        )
        return "totp" if moved.rowcount == 1 else None
    spent = await session.exec(
        update(RecoveryCode)
        .where(col(RecoveryCode.user_id) == user.id)
        .where(col(RecoveryCode.code_hash) == _hash_code(code))
        .where(col(RecoveryCode.used_at).is_(None))
        .values(used_at=utcnow())
    )
    return "recovery code" if spent.rowcount == 1 else None


async def renew_recovery_codes(
    session: AsyncSession, settings: Settings, caller: Caller, code: str
) -> list[str]:
    """Ten new recovery codes in place of the old ones, for a code from the app (or one of
    the old recovery codes, spent by this)."""
    user = await own_account(session, caller)
    if not await is_enrolled(session, user.id):
        raise Conflict("Two-factor sign-in is not on for this account")
    if await check_second_factor(session, settings, user, code) is None:
        raise InvalidInput.for_field(
            "code", "is neither the code the app shows now nor an unused recovery code"
        )
    codes = await _new_recovery_codes(session, user.id)
    caller.note("recovery-codes", "UserAccount", user.id)
    return codes


async def _remove(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user_id))
    await session.exec(delete(TwoFactor).where(col(TwoFactor.user_id) == user_id))


async def turn_off(
    session: AsyncSession, settings: Settings, caller: Caller, password: str
) -> None:
    """The owner turns it off, with their password, where their role does not require it."""
    user = await own_account(session, caller)
    if required_for(settings, user.role):
        raise PermissionDenied(
            "Your role must sign in with a second factor; it cannot be turned off"
        )
    if not verify_password(user.password_hash, password):
        raise InvalidInput.for_field("password", "is not your current password")
    await _remove(session, user.id)
    await end_sessions(session, user)
    caller.note("two-factor-off", "UserAccount", user.id)


async def reset(session: AsyncSession, user: UserAccount) -> None:
    """Remove an account's authenticator, for a lost phone without recovery codes (an
    administrator's account change, or the CLI); its sessions end, and if the role requires a
    second factor the owner enrols again at the next login."""
    await _remove(session, user.id)
    await end_sessions(session, user)


def _challenge_key(settings: Settings) -> str:
    """Not the access tokens' key, so that neither can ever pass for the other."""
    return hashlib.sha256(
        b"telehealth sign-in challenge:" + settings.signing_key.encode()
    ).hexdigest()


def issue_challenge(settings: Settings, user: UserAccount) -> str:
    """Proof that the password was right, good for ``CHALLENGE_TTL_S`` seconds and only to
    send the second factor with."""
    now = utcnow()
    claims = {
        "iss": ISSUER,
        "typ": _CHALLENGE_TYPE,
        "sub": str(user.id),
        "iat": now.timestamp(),
        "exp": now + timedelta(seconds=CHALLENGE_TTL_S),
    }
    return jwt.encode(claims, _challenge_key(settings), algorithm=_ALGORITHM)


def read_challenge(settings: Settings, challenge: str) -> uuid.UUID:
    try:
        claims = jwt.decode(
            challenge,
            _challenge_key(settings),
            algorithms=[_ALGORITHM],
            issuer=ISSUER,
            options={"require": ["exp", "sub", "typ"]},
        )
        if claims["typ"] != _CHALLENGE_TYPE:
            raise jwt.InvalidTokenError("not a challenge")
        return uuid.UUID(str(claims["sub"]))
    except jwt.ExpiredSignatureError as exc:
        raise NotAuthenticated("Too long since the password: log in again") from exc
    except (jwt.PyJWTError, ValueError) as exc:
        raise NotAuthenticated("The sign-in challenge is not valid: log in again") from exc
