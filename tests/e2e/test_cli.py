"""The ``telehealth`` command, run as people run it: check, migrate, create-user,
create-client, serve (and its request log)."""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from telehealth.demo import DEMO_PASSWORD
from tests.conftest import PG_ADMIN_DSN, REQUIRE_PG, _pg_admin, _pg_reachable, _pg_url, free_port
from tests.e2e import cli_support
from tests.e2e.cli_support import TELEHEALTH, Served, cli_env, wait_for_health
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.helpers import login

served = cli_support.served  # the fixture, bound here (see cli_support)


def run(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TELEHEALTH, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
async def empty_database_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """A database with nothing in it, not even a schema."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if not await _pg_reachable():
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required but {PG_ADMIN_DSN} is not reachable")
        pytest.skip("PostgreSQL not reachable")
    name = f"th_empty_{secrets.token_hex(6)}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    yield _pg_url(name)
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_check_reports_a_current_database(database_url: str, tmp_path: Path) -> None:
    done = run(["check"], cli_env(database_url, tmp_path))
    assert done.returncode == 0, done.stderr
    assert "schema current" in done.stdout
    assert "postgres:" not in done.stdout  # no credentials echoed


def test_check_fails_clearly_when_the_database_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/nothing"
    done = run(["check"], cli_env(url, tmp_path))
    assert done.returncode == 1
    assert "database unreachable" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_then_check_on_an_empty_database(empty_database_url: str, tmp_path: Path) -> None:
    env = cli_env(empty_database_url, tmp_path)
    behind = run(["check"], env)
    assert behind.returncode == 1
    assert "schema at nothing" in behind.stderr
    migrated = run(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert "current" in migrated.stdout
    assert run(["check"], env).returncode == 0
    assert run(["migrate"], env).returncode == 0  # idempotent


def test_serve_refuses_a_schema_that_is_behind_on_postgresql(
    empty_database_url: str, backend: str, tmp_path: Path
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite is migrated on start by default")
    done = run(["serve", "--port", str(free_port())], cli_env(empty_database_url, tmp_path))
    assert done.returncode == 1
    assert "telehealth migrate" in done.stderr
    assert "Traceback" not in done.stderr


def test_create_user_reads_the_password_from_stdin_and_can_log_in(
    served: Served, database_url: str, tmp_path: Path
) -> None:
    env = cli_env(database_url, tmp_path)
    args = ["create-user", "--username", "bs.cli", "--name", "BS. Dòng Lệnh"]
    args += ["--role", "requester", "--facility", "82104", "--password-stdin"]
    done = run(args, env, stdin="Mat-khau-dong-lenh-1\n")
    assert done.returncode == 0, done.stderr
    assert "created requester account bs.cli" in done.stdout
    login = httpx.post(
        f"{served.url}/api/auth/login",
        json={"username": "bs.cli", "password": "Mat-khau-dong-lenh-1"},
    )
    assert login.status_code == 200, login.text
    # Whoever ran the command chose the password: the owner must change it before anything.
    bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
    refused = httpx.get(f"{served.url}/api/patients", headers=bearer)
    assert refused.status_code == 403 and "/api/auth/password" in refused.json()["detail"]

    again = run(args, env, stdin="Mat-khau-dong-lenh-1\n")
    assert again.returncode == 1 and "taken" in again.stderr
    weak = run([*args[:2], "bs.cli2", *args[3:]], env, stdin="short\n")
    assert weak.returncode == 1 and "password" in weak.stderr
    nowhere = [*args[:2], "bs.cli3", *args[3:]]
    nowhere[nowhere.index("82104")] = "00000"
    missing = run(nowhere, env, stdin="Mat-khau-dong-lenh-1\n")
    assert missing.returncode == 1 and "00000" in missing.stderr


def test_create_client_prints_a_working_secret_once(
    served: Served, database_url: str, tmp_path: Path
) -> None:
    args = ["create-client", "--client-id", "lis-bvdk", "--name", "LIS"]
    done = run([*args, "--scopes", "system/Patient.rs"], cli_env(database_url, tmp_path))
    assert done.returncode == 0, done.stderr
    fields = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    token = httpx.post(
        f"{served.url}/api/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": fields["client_id"],
            "client_secret": fields["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "system/Patient.rs"
    bad = run(
        ["create-client", "--client-id", "x-bad", "--name", "X", "--scopes", "all"],
        cli_env(database_url, tmp_path),
    )
    assert bad.returncode == 1 and "SMART" in bad.stderr


def test_serve_answers_health_and_logs_one_json_line_per_request(served: Served) -> None:
    health = httpx.get(f"{served.url}/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    login = httpx.post(
        f"{served.url}/api/auth/login",
        json={"username": "bs.xa1", "password": "telehealth-demo-only"},
        headers={"X-Request-ID": "cli-log-probe"},
    )
    assert login.headers["x-request-id"] == "cli-log-probe"
    token = login.json()["access_token"]
    search = httpx.get(
        f"{served.url}/api/patients?name=nguyen+van&identifier=082185001234",
        headers={"Authorization": f"Bearer {token}"},
    )
    request_id = search.headers["x-request-id"]
    served.process.terminate()
    served.process.wait(timeout=30)

    lines = [json.loads(line) for line in served.log_lines() if line.startswith("{")]
    requests = [line for line in lines if line.get("event") == "request"]
    assert {"cli-log-probe", request_id} <= {line["request_id"] for line in requests}
    logged = next(line for line in requests if line["request_id"] == request_id)
    assert logged["path"] == "/api/patients"
    assert logged["status"] == 200
    assert logged["method"] == "GET"
    assert logged["actor"] == login.json()["identity"]["id"]
    text = served.log.read_text()
    assert "nguyen" not in text and "082185001234" not in text
    assert "telehealth-demo-only" not in text and token not in text


@contextmanager
def two_workers(env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """`telehealth serve --workers 2` on a free port, until the block ends; yields its URL."""
    port = free_port()
    log = tmp_path / "workers.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [TELEHEALTH, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, process, log)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@ONE_AT_A_TIME  # two service processes each: not beside the other heavy tests
def test_serve_with_several_workers_shares_one_generated_key(
    database_url: str, backend: str, tmp_path: Path
) -> None:
    """Without TELEHEALTH_SECRET_KEY, all workers must sign with the same generated key."""
    if backend != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    env = cli_env(database_url, tmp_path)
    del env["TELEHEALTH_SECRET_KEY"]
    with two_workers(env, tmp_path) as url:
        with httpx.Client(base_url=url) as http:
            token = http.post(
                "/api/auth/login", json={"username": "bs.xa1", "password": "telehealth-demo-only"}
            ).json()["access_token"]
        for _ in range(12):  # a fresh connection each time: either worker may answer
            with httpx.Client(base_url=url) as http:
                me = http.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
                assert me.status_code == 200, me.text
    assert (tmp_path / "secret.key").read_text().strip()


def test_sqlite_refuses_several_workers(tmp_path: Path) -> None:
    done = run(["serve", "--workers", "2"], cli_env("", tmp_path))
    assert done.returncode == 2
    assert "PostgreSQL" in done.stderr


@ONE_AT_A_TIME  # two service processes each: not beside the other heavy tests
def test_metrics_of_several_workers_add_up(database_url: str, backend: str, tmp_path: Path) -> None:
    """Whichever worker answers the scrape, it counts every worker's requests."""
    if backend != "postgresql":
        pytest.skip("several workers need PostgreSQL")
    env = cli_env(database_url, tmp_path) | {"TELEHEALTH_METRICS_TOKEN": "scraper-token-1234"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with two_workers(env, tmp_path) as url:
        for _ in range(12):  # a fresh connection each time: either worker may answer
            with httpx.Client(base_url=url) as http:
                assert http.get("/api/auth/me").status_code == 401
        seen = set()
        for _ in range(6):
            with httpx.Client(base_url=url) as http:
                page = http.get("/metrics", headers={"Authorization": "Bearer scraper-token-1234"})
            assert page.status_code == 200, page.text
            line = next(
                line
                for line in page.text.splitlines()
                if line.startswith("telehealth_http_requests_total{")
                and 'route="/api/auth/me"' in line
            )
            seen.add(float(line.rsplit(" ", 1)[1]))
        assert seen == {12.0}
    assert any((tmp_path / "metrics").iterdir())  # the workers' shared counts


async def test_reset_two_factor_lets_an_administrator_who_lost_the_phone_enrol_again(
    served: Served, database_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=served.url, timeout=30) as client:
        admin = await login(client, "quantri")  # enrols, then signs in with a code
        challenged = await client.post(
            "/api/auth/login", json={"username": "quantri", "password": DEMO_PASSWORD}
        )
        assert challenged.json()["second_factor_required"] is True
        done = run(["reset-two-factor", "quantri"], cli_env(database_url, tmp_path))
        assert done.returncode == 0, done.stderr
        assert "reset" in done.stdout
        again = await client.post(
            "/api/auth/login", json={"username": "quantri", "password": DEMO_PASSWORD}
        )
        assert again.json()["identity"]["must_enrol_two_factor"] is True
        if database_url.startswith("postgresql"):
            # Another process ended the sessions: the running service hears it (PostgreSQL).
            assert (await client.get("/api/auth/me", headers=admin)).status_code == 401
        unknown = run(["reset-two-factor", "nobody.here"], cli_env(database_url, tmp_path))
        assert unknown.returncode != 0 and "nobody.here" in unknown.stderr
