"""The browser session over plain HTTP: cookies, CSRF, redirects, and the API left cookie-free."""

from __future__ import annotations

import re

import httpx
import jwt
import pytest

from telehealth.http.cookies import ACCESS_COOKIE, session_cookies
from telehealth.settings import Settings
from tests.helpers import AUTHENTICATORS, assert_problem, enrol_two_factor

CSRF_FIELD = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
CHALLENGE_FIELD = re.compile(r'name="challenge" value="([^"]+)"')


async def csrf_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = CSRF_FIELD.search(page.text)
    assert found, page.text
    return found.group(1)


async def page_login(client: httpx.AsyncClient, username: str) -> httpx.Response:
    """The login form as a browser posts it, with the code page after it where the account
    has an authenticator (enrolled first, over the API, where the role must have one)."""
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={"_csrf_token": token, "username": username, "password": "telehealth-demo-only"},
    )
    challenge = CHALLENGE_FIELD.search(response.text) if response.status_code == 200 else None
    if challenge:
        return await client.post(
            "/login/second-factor",
            data={
                "_csrf_token": token,
                "challenge": challenge.group(1),
                "code": AUTHENTICATORS[username].next_code(),
            },
        )
    access = client.cookies.get(ACCESS_COOKIE)
    if (
        response.status_code == 303
        and access
        and jwt.decode(access, options={"verify_signature": False}).get("tfe")
    ):
        await enrol_two_factor(client, username, {"Authorization": f"Bearer {access}"})
        return await page_login(client, username)
    return response


async def test_login_sets_httponly_samesite_cookies(client: httpx.AsyncClient) -> None:
    response = await page_login(client, "bs.xa1")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookies = {c.split("=", 1)[0]: c for c in response.headers.get_list("set-cookie")}
    assert "HttpOnly" in cookies["th_access"] and "SameSite=lax" in cookies["th_access"]
    assert "Path=/session" in cookies["th_refresh"] and "HttpOnly" in cookies["th_refresh"]
    assert "Secure" not in cookies["th_access"]  # plain http on loopback
    home = await client.get("/")
    assert home.status_code == 200 and "Xin chào" in home.text


def test_cookies_are_secure_behind_https(settings: Settings) -> None:
    https = settings.model_copy(update={"public_base_url": "https://telehealth.example.vn"})
    for cookie in session_cookies(https, "access", "refresh"):
        assert cookie.secure and cookie.httponly


async def test_form_without_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/login", data={"username": "bs.xa1", "password": "telehealth-demo-only"}
    )
    assert refused.status_code == 403
    assert "text/html" in refused.headers["content-type"]
    assert ACCESS_COOKIE not in refused.cookies


async def test_api_ignores_the_session_cookie(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    assert client.cookies.get(ACCESS_COOKIE)
    assert (await client.get("/")).status_code == 200
    # Cross-site forms could ride on a cookie; the API takes only bearer tokens.
    assert_problem(await client.get("/api/patients"), 401)


async def test_login_never_redirects_off_site(client: httpx.AsyncClient) -> None:
    token = await csrf_token(client)
    response = await client.post(
        "/login",
        data={
            "_csrf_token": token,
            "username": "bs.xa1",
            "password": "telehealth-demo-only",
            "next": "//evil.example/steal",
        },
    )
    assert response.headers["location"] == "/"
    switched = await client.get("/lang/en", params={"next": "https://evil.example"})
    assert switched.headers["location"] == "/"


async def test_expired_session_is_renewed_with_the_refresh_cookie(
    client: httpx.AsyncClient,
) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    for cookie in client.cookies.jar:
        if cookie.name == ACCESS_COOKIE:
            cookie.value = "not-a-valid-token"  # as after the token's lifetime
    bounced = await client.get("/patients")
    assert bounced.status_code == 303
    assert bounced.headers["location"] == "/session/refresh?next=/patients"
    renewed = await client.get(bounced.headers["location"])
    assert renewed.status_code == 303 and renewed.headers["location"] == "/patients"
    assert (await client.get("/patients")).status_code == 200


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    refresh = client.cookies.get("th_refresh")
    token = await csrf_token(client, "/")
    out = await client.post("/session/logout", data={"_csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert not client.cookies.get(ACCESS_COOKIE)
    reused = await client.post("/api/auth/refresh", json={"refresh_token": refresh})
    assert_problem(reused, 401)
    assert (await client.get("/")).headers["location"].startswith("/login")


@pytest.mark.parametrize("path", ["/admin/accounts", "/admin/audit", "/admin/clients"])
async def test_admin_pages_refuse_doctors(client: httpx.AsyncClient, path: str) -> None:
    assert (await page_login(client, "bs.xa1")).status_code == 303
    refused = await client.get(path)
    assert refused.status_code == 403
    assert "Bạn không có quyền" in refused.text
    assert "Traceback" not in refused.text


async def test_change_password_ends_the_session(client: httpx.AsyncClient) -> None:
    assert (await page_login(client, "bs.xa2")).status_code == 303
    token = await csrf_token(client, "/account/password")
    wrong = await client.post(
        "/account/password",
        data={
            "_csrf_token": token,
            "current_password": "nope",
            "new_password": "a-new-password-of-mine",
            "confirm_password": "a-new-password-of-mine",
        },
    )
    assert wrong.status_code == 422
    assert "không phải mật khẩu hiện tại của bạn" in wrong.text
    changed = await client.post(
        "/account/password",
        data={
            "_csrf_token": token,
            "current_password": "telehealth-demo-only",
            "new_password": "a-new-password-of-mine",
            "confirm_password": "a-new-password-of-mine",
        },
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/login?changed=1"
    old = await client.post(
        "/api/auth/login", json={"username": "bs.xa2", "password": "telehealth-demo-only"}
    )
    assert_problem(old, 401)
    new = await client.post(
        "/api/auth/login", json={"username": "bs.xa2", "password": "a-new-password-of-mine"}
    )
    assert new.status_code == 200


async def test_unknown_page_is_a_page_and_unknown_api_path_is_a_problem(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/no-such-page", headers={"accept": "text/html"})
    assert page.status_code == 404
    assert "<h1>Không tìm thấy</h1>" in page.text
    assert_problem(await client.get("/api/no-such-thing", headers={"accept": "text/html"}), 404)
