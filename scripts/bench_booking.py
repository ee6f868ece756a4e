"""Booking throughput: the service's HTTP API against bare asyncpg, same rows, same run.

A fresh PostgreSQL database is migrated and loaded with the demo province; free slots and
accepted requests are prepared, one slot in ten wanted by two requests. API rounds book
them through ``POST /api/appointments`` on a real uvicorn server (another process) with N
concurrent clients; bare rounds write the same rows per booking (slot claim, appointment, request state, transition, four timers, two
notifications, audit event, and the four FHIR versions of
bench_booking_fhir.py) with bare asyncpg and the same concurrency. The two alternate in
rounds, so both see the same load on a shared machine; the whole run is bounded in time.
Finally the database is checked for double bookings (same slot, or overlapping times).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
from sqlmodel import select

from telehealth.auth.models import UserAccount
from telehealth.availability.models import Slot
from telehealth.consults import rules
from telehealth.consults.models import ActivityType, ConsultRequest, ConsultStatus, Priority
from telehealth.db import Database
from telehealth.demo import DEMO_PASSWORD, seed_demo
from telehealth.directory.models import Patient, PractitionerRole
from telehealth.migrate import upgrade
from telehealth.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
import bench_booking_fhir

ADMIN_DSN = os.environ.get(
    "TELEHEALTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parent.parent


def _url(name: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0].replace('postgresql', driver, 1)}/{name}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def prepare(url: str, count: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Two disjoint work lists of (request id, slot id): free future slots, accepted requests;
    one slot in ten appears twice, with two requests racing for it."""
    db = Database(Settings(database_url=url))
    async with db.unit_of_work() as session:
        await seed_demo(session)
    async with db.unit_of_work() as session:
        requester = (
            await session.exec(select(UserAccount).where(UserAccount.username == "bs.xa1"))
        ).one()
        patients = (
            await session.exec(
                select(Patient.id).where(Patient.organization_id == requester.organization_id)
            )
        ).all()
        roles = [
            role
            for role in (await session.exec(select(PractitionerRole))).all()
            if role.specialty_id is not None and (await session.get(UserAccount, role.id)) is None
        ]
        specialists = {
            user.practitioner_id
            for user in (
                await session.exec(select(UserAccount).where(UserAccount.role == "specialist"))
            ).all()
        }
        roles = [role for role in roles if role.practitioner_id in specialists]
        start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)
        pairs: list[tuple[str, str]] = []

        def accepted(role: PractitionerRole) -> ConsultRequest:
            request = ConsultRequest(
                patient_id=patients[len(pairs) % len(patients)],
                requesting_organization_id=requester.organization_id,
                requester_id=requester.id,
                activity_type=ActivityType.EXAM_TREATMENT,
                specialty_id=role.specialty_id or uuid.uuid4(),
                priority=Priority.ROUTINE,
                priority_rank=2,
                reason="benchmark",
                clinical_summary="benchmark",
                status=ConsultStatus.ACCEPTED,
                assigned_role_id=role.id,
                assigned_practitioner_id=role.practitioner_id,
            )
            session.add(request)
            return request

        for index in range(2 * count):
            role = roles[index % len(roles)]
            step = index // len(roles)
            slot = Slot(
                practitioner_role_id=role.id,
                practitioner_id=role.practitioner_id,
                organization_id=role.organization_id,
                specialty_id=role.specialty_id or uuid.uuid4(),
                starts_at=start + timedelta(minutes=20 * step),
                ends_at=start + timedelta(minutes=20 * step + 20),
            )
            session.add(slot)
            pairs.append((str(accepted(role).id), str(slot.id)))
            if index % 10 == 9:  # one slot in ten is contested by a second request
                pairs.append((str(accepted(role).id), str(slot.id)))
    await db.dispose()
    half = len(pairs) // 2
    return pairs[:half], pairs[half:]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def api_server(
    url: str, clients: int, workers: int
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """The real service in its own processes (as deployed), and a logged-in HTTP client."""
    port = _free_port()
    env = {
        **os.environ,
        "TELEHEALTH_DATABASE_URL": url,
        "TELEHEALTH_SECRET_KEY": secrets.token_urlsafe(40),
        "TELEHEALTH_DB_POOL_SIZE": str(max(4, clients // workers)),
    }
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "telehealth.app:create_app_from_environment",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(workers),
        env=env,
        cwd=ROOT,
    )
    try:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
        ) as http:
            for _ in range(300):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            login = await http.post(
                "/api/auth/login", json={"username": "bs.xa1", "password": DEMO_PASSWORD}
            )
            yield http, {"Authorization": f"Bearer {login.json()['access_token']}"}
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)


async def api_round(
    http: httpx.AsyncClient, headers: dict[str, str], work: list[tuple[str, str]], clients: int
) -> tuple[int, int, float, list[float]]:
    """Book ``work`` through POST /api/appointments with ``clients`` concurrent clients."""
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    latencies: list[float] = []
    booked = rejected = 0

    async def client() -> None:
        nonlocal booked, rejected
        while not queue.empty():
            request_id, slot_id = queue.get_nowait()
            began = time.perf_counter()
            response = await http.post(
                "/api/appointments",
                json={"request_id": request_id, "slot_id": slot_id},
                headers=headers,
            )
            latencies.append(time.perf_counter() - began)
            if response.status_code == 201:
                booked += 1
            elif response.status_code == 409:
                rejected += 1
            else:
                raise RuntimeError(f"unexpected {response.status_code}: {response.text}")

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return booked, rejected, time.perf_counter() - began, latencies


BARE_SQL = {
    "request": "SELECT status, patient_id, requester_id, requesting_organization_id, specialty_id, "
    "target_organization_id, assigned_practitioner_id, priority FROM consult_request WHERE id = $1",
    "claim": "UPDATE slot SET status = 'booked', hold_until = NULL, held_by = NULL, updated_at = $2 "
    "WHERE id = $1 AND starts_at > $2 AND status = 'free' RETURNING practitioner_id, "
    "practitioner_role_id, specialty_id, organization_id, starts_at, ends_at",
    "appointment": "INSERT INTO appointment (id, created_at, updated_at, request_id, slot_id, patient_id, "
    "practitioner_id, practitioner_role_id, starts_at, ends_at, status, booked_by) "
    "VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, 'booked', $10)",
    "schedule": "UPDATE consult_request SET status = 'scheduled', updated_at = $2 "
    "WHERE id = $1 AND status = 'accepted'",
    "transition": "INSERT INTO consult_transition (id, request_id, action, from_status, to_status, "
    "actor_kind, actor_id, actor_name, at) VALUES ($1, $2, 'schedule', 'accepted', 'scheduled', "
    "'user', $3, 'bench', $4)",
    "timer": "INSERT INTO timer (id, kind, subject_id, due_at, state, attempts, payload, created_at) "
    "VALUES ($1, $2, $3, $4, 'pending', 0, $5::jsonb, $6)",
    "accounts": "SELECT id FROM user_account WHERE practitioner_id = $1",
    "notification": "INSERT INTO notification (id, recipient_id, channel, kind, subject_id, params, "
    "state, attempts, next_attempt_at, created_at) VALUES ($1, $2, 'in_app', 'appointment.booked', "
    "$3, $4::jsonb, 'pending', 0, $5, $5)",
    # The appointment's video room and its two participants (booking opens the room).
    "room": "INSERT INTO room (id, appointment_id, state, starts_at, ends_at, opens_at, closes_at, "
    "created_at, updated_at) VALUES ($1, $2, 'scheduled', $3, $4, $5, $6, $7, $7)",
    "participant": "INSERT INTO room_participant (id, room_id, user_id, role, created_at) "
    "VALUES ($1, $2, $3, $4, $5)",
    "audit": "INSERT INTO audit_event (id, recorded_at, actor_kind, actor_id, actor_name, action, "
    "entity_type, entity_id, patient_id, outcome, ip, request_id, detail) VALUES ($1, $2, 'user', $3, "
    "'bench', 'book', 'Appointment', $4, $5, 'success', '127.0.0.1', $6, $7)",
}


async def bare_book(
    connection: asyncpg.Connection, request_id: str, slot_id: str, actor: uuid.UUID
) -> bool:
    now = datetime.now(UTC)
    async with connection.transaction():
        request = await connection.fetchrow(BARE_SQL["request"], uuid.UUID(request_id))
        slot = await connection.fetchrow(BARE_SQL["claim"], uuid.UUID(slot_id), now)
        if slot is None:
            return False
        appointment = uuid.uuid4()
        await connection.execute(
            BARE_SQL["appointment"],
            appointment,
            now,
            uuid.UUID(request_id),
            uuid.UUID(slot_id),
            request["patient_id"],
            slot["practitioner_id"],
            slot["practitioner_role_id"],
            slot["starts_at"],
            slot["ends_at"],
            actor,
        )
        if await connection.execute(BARE_SQL["schedule"], uuid.UUID(request_id), now) != "UPDATE 1":
            raise RuntimeError("request changed")
        await connection.execute(
            BARE_SQL["transition"], uuid.uuid4(), uuid.UUID(request_id), actor, now
        )
        await connection.executemany(
            BARE_SQL["timer"],
            [
                (uuid.uuid4(), t.kind, appointment, t.due_at, json.dumps(t.payload), now)
                for t in rules.appointment_timers(slot["starts_at"], now)
            ],
        )
        recipients = [
            request["requester_id"],
            *(
                row["id"]
                for row in await connection.fetch(BARE_SQL["accounts"], slot["practitioner_id"])
            ),
        ]
        room = uuid.uuid4()
        await connection.execute(
            BARE_SQL["room"],
            room,
            appointment,
            slot["starts_at"],
            slot["ends_at"],
            slot["starts_at"] - timedelta(minutes=15),
            slot["ends_at"] + timedelta(minutes=30),
            now,
        )
        await connection.executemany(
            BARE_SQL["participant"],
            [
                (uuid.uuid4(), room, person, "requester" if index == 0 else "specialist", now)
                for index, person in enumerate(recipients)
            ],
        )
        params = json.dumps({"starts_at": slot["starts_at"].isoformat(), "request_id": request_id})
        await connection.executemany(
            BARE_SQL["notification"],
            [(uuid.uuid4(), r, appointment, params, now) for r in recipients],
        )
        await bench_booking_fhir.write_versions(
            connection,
            now,
            bench_booking_fhir.booking_resources(
                request_id, slot_id, str(appointment), str(request["patient_id"]), slot
            ),
        )
        await connection.execute(
            BARE_SQL["audit"],
            uuid.uuid4(),
            now,
            str(actor),
            str(appointment),
            request["patient_id"],
            secrets.token_hex(8),
            f"slot {slot_id}",
        )
    return True


async def bare_round(
    pool: asyncpg.Pool, work: list[tuple[str, str]], clients: int
) -> tuple[int, float]:
    """The same bookings as rows written with bare asyncpg, same concurrency."""
    actor = uuid.uuid4()
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    booked = 0

    async def client() -> None:
        nonlocal booked
        async with pool.acquire() as connection:
            while not queue.empty():
                if await bare_book(connection, *queue.get_nowait(), actor):
                    booked += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return booked, time.perf_counter() - began


async def double_bookings(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        same_slot = await connection.fetchval(
            "SELECT count(*) FROM (SELECT slot_id FROM appointment WHERE status <> 'cancelled' "
            "GROUP BY slot_id HAVING count(*) > 1) AS twice"
        )
        overlapping = await connection.fetchval(
            "SELECT count(*) FROM appointment a JOIN appointment b ON a.practitioner_id = "
            "b.practitioner_id AND a.id < b.id AND a.starts_at < b.ends_at AND b.starts_at < a.ends_at "
            "WHERE a.status <> 'cancelled' AND b.status <> 'cancelled'"
        )
        return int(same_slot) + int(overlapping)
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=1500, help="per kind (API, bare)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="server processes (one per core)"
    )
    parser.add_argument("--round", type=int, default=150, help="bookings per alternating round")
    parser.add_argument("--seconds", type=float, default=60, help="time bound for all rounds")
    args = parser.parse_args()
    name = f"th_bench_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = _url(name)
        await asyncio.to_thread(upgrade, url)
        api_work, bare_work = await prepare(url, args.bookings)
        print(f"prepared {len(api_work)} + {len(bare_work)} bookings; {args.clients} clients")
        # API and bare rounds alternate, so that both see the same load on a shared machine.
        api_booked = rejected = bare_booked = 0
        api_s = bare_s = 0.0
        latencies: list[float] = []
        deadline = time.perf_counter() + args.seconds
        pool = await asyncpg.create_pool(
            _url(name, "postgresql"), min_size=args.clients, max_size=args.clients
        )
        async with api_server(url, args.clients, args.workers) as (http, headers):
            await api_round(http, headers, api_work[:64], args.clients)  # warm up
            await bare_round(pool, bare_work[:64], args.clients)
            for start in range(64, len(api_work), args.round):
                if time.perf_counter() > deadline:
                    break
                booked, refused, seconds, times = await api_round(
                    http, headers, api_work[start : start + args.round], args.clients
                )
                api_booked, rejected, api_s = (
                    api_booked + booked,
                    rejected + refused,
                    api_s + seconds,
                )
                latencies += times
                booked, seconds = await bare_round(
                    pool, bare_work[start : start + args.round], args.clients
                )
                bare_booked, bare_s = bare_booked + booked, bare_s + seconds
        await pool.close()
        latencies.sort()
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        api_rate, bare_rate = api_booked / api_s, bare_booked / bare_s
        print(
            f"api:  {api_booked} booked, {rejected} contested attempts refused (409), "
            f"{api_s:.1f} s = {api_rate:.0f}/s; p50 {latencies[len(latencies) // 2] * 1000:.1f} ms,"
            f" p99 {p99:.1f} ms"
        )
        print(f"bare: {bare_booked} booked, {bare_s:.1f} s = {bare_rate:.0f}/s")
        doubles = await double_bookings(_url(name, "postgresql"))
        print(
            json.dumps(
                {
                    "api_bookings_per_s": round(api_rate, 1),
                    "bare_bookings_per_s": round(bare_rate, 1),
                    "ratio": round(api_rate / bare_rate, 3),
                    "p99_ms": round(p99, 1),
                    "double_bookings": doubles,
                    "contested_409": rejected,
                    "clients": args.clients,
                    "workers": args.workers,
                }
            )
        )
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
