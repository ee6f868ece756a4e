"""Join tokens and ICE configuration handed to a participant.

A join token is a JWT (HS256) with its own audience and a key derived from the service key, so
it can never pass for an access token (and the other way round). TURN credentials follow the
TURN REST convention that coturn checks with ``use-auth-secret``: the username is
``<expiry unix time>:<participant>``, the password base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from telehealth.errors import NotAuthenticated, PermissionDenied
from telehealth.settings import Settings

AUDIENCE = "telehealth-room"
_ALGORITHM = "HS256"


class TokenExpired(NotAuthenticated):
    title = "Join token expired"


class WrongRoom(PermissionDenied):
    title = "Join token for another room"


@dataclass(frozen=True)
class JoinClaims:
    room_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    name: str


def _join_key(settings: Settings) -> bytes:
    return hmac.new(settings.signing_key.encode(), b"rtc-join-token", hashlib.sha256).digest()


def issue_join_token(settings: Settings, claims: JoinClaims, now: datetime) -> str:
    payload: dict[str, Any] = {
        "aud": AUDIENCE,
        "sub": str(claims.user_id),
        "room": str(claims.room_id),
        "role": claims.role,
        "name": claims.name,
        "iat": now,
        "exp": now + timedelta(seconds=settings.join_token_ttl_s),
    }
    return jwt.encode(payload, _join_key(settings), algorithm=_ALGORITHM)


def read_join_token(settings: Settings, token: str, room_id: uuid.UUID) -> JoinClaims:
    """The claims of a valid token for this room; otherwise a refusal saying why."""
    try:
        payload = jwt.decode(
            token,
            _join_key(settings),
            algorithms=[_ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "room"]},
        )
        claims = JoinClaims(
            room_id=uuid.UUID(payload["room"]),
            user_id=uuid.UUID(payload["sub"]),
            role=str(payload.get("role", "")),
            name=str(payload.get("name", "")),
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired(
            "Mã vào phòng đã hết hạn; hãy mở lại phòng từ lịch hẹn. / "
            "The join token has expired; open the room again from the appointment."
        ) from exc
    except (jwt.PyJWTError, ValueError, KeyError) as exc:
        raise NotAuthenticated("Mã vào phòng không hợp lệ. / The join token is not valid.") from exc
    if claims.room_id != room_id:
        raise WrongRoom(
            "Mã này dành cho phòng khác. / This join token is for another consult room."
        )
    return claims


def turn_credentials(secret: str, participant: str, expires_at: datetime) -> tuple[str, str]:
    """(username, password) for coturn's ``use-auth-secret`` (TURN REST API)."""
    username = f"{int(expires_at.timestamp())}:{participant}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(
    settings: Settings, participant: str, now: datetime, until: datetime
) -> list[dict[str, Any]]:
    """The RTCConfiguration.iceServers a participant's browser (or peer) should use; TURN
    credentials last no longer than ``until``, the end of the room's window (a relay must not
    outlive the consult it was granted for)."""
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        expires = min(now + timedelta(seconds=settings.turn_credential_ttl_s), until)
        username, password = turn_credentials(settings.turn_secret, participant, expires)
        servers.append(
            {"urls": list(settings.turn_urls), "username": username, "credential": password}
        )
    return servers
