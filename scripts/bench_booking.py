"""Booking throughput: the service's HTTP API against bare asyncpg, same rows, same run.

A fresh PostgreSQL database is migrated and loaded with the demo province; free slots and
accepted requests are prepared, one slot in ten wanted by two requests. API rounds book
them through ``POST /api/appointments`` on a real uvicorn server (other processes) with N
concurrent aiohttp clients; bare rounds write the same rows per booking (slot claim,
appointment, request state, transition, timers, room and participants, notifications, audit
event, and the four FHIR versions of bench_booking_fhir.py) with bare asyncpg, the same
concurrency and the same number of statements as the service where it batches (one multi-row
statement per table). The two alternate in rounds, so both see the same load on a shared
machine; the whole run is bounded in time. Then a paced phase: the same clients together
offer a fixed rate below capacity (``--paced-share`` of the API rate just measured), and the
latency is taken from each booking's scheduled start, so queueing behind a slow one counts.
Finally the database is checked for double bookings (same slot, or overlapping times).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import secrets
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import asyncpg
import uvloop
from sqlmodel import select

from telehealth.auth.models import UserAccount
from telehealth.availability.models import Slot
from telehealth.consults import rules
from telehealth.consults.models import ActivityType, ConsultRequest, ConsultStatus, Priority
from telehealth.demo import DEMO_PASSWORD, seed_demo
from telehealth.directory.models import Patient, PractitionerRole
from telehealth.reactions import open_database, upgrade_database
from telehealth.settings import Settings

sys.path.insert(0, str(Path(__file__).parent))
import bench_audit
import bench_booking_fhir

ADMIN_DSN = os.environ.get(
    "TELEHEALTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
ROOT = Path(__file__).resolve().parent.parent
SERVER_LOG = Path(tempfile.gettempdir()) / "bench_booking_server.log"


def _url(name: str, driver: str = "postgresql+asyncpg") -> str:
    return f"{ADMIN_DSN.rsplit('/', 1)[0].replace('postgresql', driver, 1)}/{name}"


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def prepare(url: str, sizes: list[int]) -> list[list[tuple[str, str]]]:
    """Disjoint work lists of about these sizes, of (request id, slot id): free future slots,
    accepted requests; one slot in ten appears twice, with two requests racing for it."""
    db = open_database(Settings(database_url=url))
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

        for index in range(sum(sizes)):
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
    lists, start = [], 0
    for size in sizes:
        end = start + len(pairs) * size // sum(sizes)
        lists.append(pairs[start:end])
        start = end
    return lists


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (0 if it is gone or not on this machine)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


class CpuMeter:
    """CPU spent by everything a booking uses, whatever else runs on the machine: the server
    processes, this database's PostgreSQL backends (when PostgreSQL is local) and this process
    (the client). CPU per booking compares API and bare on a busy machine, where rates swing."""

    def __init__(self, server_pid: int, dsn: str, database: str) -> None:
        self.server_pid, self.dsn, self.database = server_pid, dsn, database

    async def total(self) -> float:
        return sum(await self.parts())

    async def parts(self) -> tuple[float, float, float]:
        """CPU seconds so far of the server processes, the database backends, the client."""
        connection = await asyncpg.connect(self.dsn)
        try:
            backends = [
                row["pid"]
                for row in await connection.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> "
                    "pg_backend_pid()",
                    self.database,
                )
            ]
        finally:
            await connection.close()
        server = [self.server_pid, *_children(self.server_pid)]
        return (
            sum(_cpu_seconds(pid) for pid in server),
            sum(_cpu_seconds(pid) for pid in backends),
            time.process_time(),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def api_server(
    url: str, clients: int, workers: int
) -> AsyncIterator[tuple[aiohttp.ClientSession, str, dict[str, str], int]]:
    """The real service in its own processes (as deployed), and a logged-in HTTP client
    (aiohttp: the load generator shares the cores, and its cost is not the service's)."""
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
        stdout=SERVER_LOG.open("w"),  # the service logs each request (and any error) here
    )
    base = f"http://127.0.0.1:{port}"
    try:
        connector = aiohttp.TCPConnector(limit=clients)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for _ in range(300):
                try:
                    async with http.get(f"{base}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            async with http.post(
                f"{base}/api/auth/login", json={"username": "bs.xa1", "password": DEMO_PASSWORD}
            ) as response:
                token = (await response.json())["access_token"]
            yield http, base, {"Authorization": f"Bearer {token}"}, server.pid
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)


async def api_book(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], request_id: str, slot_id: str
) -> bool:
    """One booking through the API: True if booked, False if the slot was taken (409)."""
    async with http.post(
        f"{base}/api/appointments",
        json={"request_id": request_id, "slot_id": slot_id},
        headers=headers,
    ) as response:
        body = await response.read()
        if response.status not in (201, 409):
            raise RuntimeError(f"unexpected {response.status}: {body.decode()}")
        return response.status == 201


Book = Callable[[str, str], Awaitable[bool]]


async def closed_loop(
    book: Book, work: list[tuple[str, str]], clients: int
) -> tuple[int, int, float, list[float]]:
    """``clients`` concurrent clients, each booking the next item as soon as its last one is
    answered: (booked, refused, seconds, latencies)."""
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
            if await book(request_id, slot_id):
                booked += 1
            else:
                rejected += 1
            latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return booked, rejected, time.perf_counter() - began, latencies


async def paced(
    book: Book, work: list[tuple[str, str]], clients: int, rate: float
) -> tuple[int, float, list[float]]:
    """``clients`` clients together offering ``rate`` bookings/s on a fixed schedule; each
    latency runs from the booking's scheduled start (a late start is counted, not hidden)."""
    began = time.perf_counter() + 0.2
    schedule = asyncio.Queue[tuple[float, tuple[str, str]]]()
    for index, item in enumerate(work):
        schedule.put_nowait((began + index / rate, item))
    latencies: list[float] = []
    booked = 0

    async def client() -> None:
        nonlocal booked
        while not schedule.empty():
            due, (request_id, slot_id) = schedule.get_nowait()
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            booked += await book(request_id, slot_id)
            latencies.append(time.perf_counter() - due)

    await asyncio.gather(*(client() for _ in range(clients)))
    return booked, time.perf_counter() - began, latencies


BARE_SQL = {
    # The request and its specialist's accounts in one query, as the service reads them.
    "request": "SELECT r.status, r.patient_id, r.requester_id, r.requesting_organization_id, "
    "r.specialty_id, r.target_organization_id, r.assigned_practitioner_id, r.priority, "
    "a.id AS account FROM consult_request r LEFT JOIN user_account a "
    "ON a.practitioner_id = r.assigned_practitioner_id WHERE r.id = $1",
    "claim": "UPDATE slot SET status = 'booked', hold_until = NULL, held_by = NULL, "
    "held_for_request_id = NULL, updated_at = $2 "
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
    # Several rows as one INSERT over arrays (one per column), as the service writes them.
    "timer": "INSERT INTO timer (id, kind, subject_id, due_at, state, attempts, payload, created_at) "
    "SELECT id, kind, $3, due, 'pending', 0, payload, $5 "
    "FROM unnest($1::uuid[], $2::text[], $4::timestamptz[], $6::jsonb[]) AS t(id, kind, due, payload)",
    "notification": "INSERT INTO notification (id, recipient_id, channel, kind, subject_id, params, "
    "state, attempts, next_attempt_at, created_at) SELECT id, person, 'in_app', 'appointment.booked', "
    "$3, $4::jsonb, 'pending', 0, $5, $5 FROM unnest($1::uuid[], $2::uuid[]) AS n(id, person)",
    # The appointment's video room and its two participants (booking opens the room).
    "room": "INSERT INTO room (id, appointment_id, state, starts_at, ends_at, opens_at, closes_at, "
    "created_at, updated_at) VALUES ($1, $2, 'scheduled', $3, $4, $5, $6, $7, $7)",
    "participant": "INSERT INTO room_participant (id, room_id, user_id, role, created_at) "
    "SELECT id, $2, person, role, $5 FROM unnest($1::uuid[], $3::uuid[], $4::text[]) AS p(id, person, role) "
    "ON CONFLICT (room_id, user_id) DO NOTHING",
}


async def bare_book(
    connection: asyncpg.Connection, request_id: str, slot_id: str, actor: uuid.UUID
) -> bool:
    """One booking: the service's rows and statement count (one statement per table, several
    rows where it writes several) with no framework in between."""
    now = datetime.now(UTC)
    async with connection.transaction():
        rows = await connection.fetch(BARE_SQL["request"], uuid.UUID(request_id))
        request = rows[0]
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
        timers = rules.appointment_timers(slot["starts_at"], now)
        await connection.execute(
            BARE_SQL["timer"],
            [uuid.uuid4() for _ in timers],
            [t.kind for t in timers],
            appointment,
            [t.due_at for t in timers],
            now,
            [json.dumps(t.payload) for t in timers],
        )
        recipients = [request["requester_id"], *(r["account"] for r in rows if r["account"])]
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
        await connection.execute(
            BARE_SQL["participant"],
            [uuid.uuid4() for _ in recipients],
            room,
            recipients,
            ["requester", *["specialist"] * (len(recipients) - 1)],
            now,
        )
        params = json.dumps({"starts_at": slot["starts_at"].isoformat(), "request_id": request_id})
        await connection.execute(
            BARE_SQL["notification"],
            [uuid.uuid4() for _ in recipients],
            recipients,
            appointment,
            params,
            now,
        )
        await bench_audit.append_audit(
            connection,
            [
                {
                    "id": uuid.uuid4(),
                    "recorded_at": now,
                    "actor_kind": "user",
                    "actor_id": str(actor),
                    "actor_name": "bench",
                    "action": "book",
                    "entity_type": "Appointment",
                    "entity_id": str(appointment),
                    "patient_id": request["patient_id"],
                    "outcome": "success",
                    "ip": "127.0.0.1",
                    "user_agent": None,
                    "request_id": secrets.token_hex(8),
                    "detail": f"slot {slot_id}",
                }
            ],
        )
        await bench_booking_fhir.write_versions(
            connection,
            now,
            bench_booking_fhir.booking_resources(
                request_id, slot_id, str(appointment), str(request["patient_id"]), slot
            ),
        )
    return True


@asynccontextmanager
async def bare_client(dsn: str, clients: int) -> AsyncIterator[Book]:
    """Bookings as rows written with bare asyncpg from a pool as large as the client count."""
    actor = uuid.uuid4()
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients)

    async def book(request_id: str, slot_id: str) -> bool:
        async with pool.acquire() as connection:
            return await bare_book(connection, request_id, slot_id, actor)

    try:
        yield book
    finally:
        await pool.close()


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


def percentile(latencies: list[float], share: float) -> float:
    ordered = sorted(latencies)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * share))] * 1000, 1)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bookings", type=int, default=1500, help="per kind (API, bare)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="server processes (one per core)"
    )
    parser.add_argument("--round", type=int, default=150, help="bookings per alternating round")
    parser.add_argument("--seconds", type=float, default=60, help="time bound for all rounds")
    parser.add_argument(
        "--paced-share", type=float, default=0.5, help="paced rate, as a share of the API rate"
    )
    parser.add_argument("--paced-seconds", type=float, default=10, help="per kind")
    args = parser.parse_args()
    name = f"th_bench_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url, dsn = _url(name), _url(name, "postgresql")
        await asyncio.to_thread(upgrade_database, url)
        paced_size = max(200, args.bookings // 3)
        api_work, bare_work, api_paced, bare_paced = await prepare(
            url, [args.bookings, args.bookings, paced_size, paced_size]
        )
        print(f"prepared {len(api_work)} + {len(bare_work)} bookings; {args.clients} clients")
        # API and bare rounds alternate, so that both see the same load on a shared machine.
        api_booked = rejected = bare_booked = 0
        api_s = bare_s = 0.0
        api_latencies: list[float] = []
        bare_latencies: list[float] = []
        deadline = time.perf_counter() + args.seconds
        async with (
            api_server(url, args.clients, args.workers) as (http, base, headers, server_pid),
            bare_client(dsn, args.clients) as bare,
        ):

            async def api(request_id: str, slot_id: str) -> bool:
                return await api_book(http, base, headers, request_id, slot_id)

            await closed_loop(api, api_work[:64], args.clients)  # warm up
            await closed_loop(bare, bare_work[:64], args.clients)
            # This process's own garbage collections (it holds the service's modules too)
            # would stall both sides' requests in flight and count against them.
            gc.collect()
            gc.freeze()
            meter = CpuMeter(server_pid, dsn, name)
            api_cpu = bare_cpu = 0.0
            api_parts = [0.0, 0.0, 0.0]
            bare_parts = [0.0, 0.0, 0.0]
            bare_attempts = 0
            for start in range(64, len(api_work), args.round):
                if time.perf_counter() > deadline:
                    break
                before = await meter.parts()
                booked, refused, seconds, times = await closed_loop(
                    api, api_work[start : start + args.round], args.clients
                )
                after = await meter.parts()
                api_parts = [
                    part + b - a for part, a, b in zip(api_parts, before, after, strict=True)
                ]
                api_cpu += sum(after) - sum(before)
                api_booked, rejected, api_s = (
                    api_booked + booked,
                    rejected + refused,
                    api_s + seconds,
                )
                api_latencies += times
                before = await meter.parts()
                booked, refused, seconds, times = await closed_loop(
                    bare, bare_work[start : start + args.round], args.clients
                )
                after = await meter.parts()
                bare_parts = [
                    part + b - a for part, a, b in zip(bare_parts, before, after, strict=True)
                ]
                bare_cpu += sum(after) - sum(before)
                bare_booked, bare_s = bare_booked + booked, bare_s + seconds
                bare_attempts += booked + refused
                bare_latencies += times
            api_rate, bare_rate = api_booked / api_s, bare_booked / bare_s
            offered = round(api_rate * args.paced_share, 1)
            count = min(paced_size, int(offered * args.paced_seconds))
            _, paced_s, api_paced_latencies = await paced(
                api, api_paced[:count], args.clients, offered
            )
            _, _, bare_paced_latencies = await paced(
                bare, bare_paced[:count], args.clients, offered
            )
        print(
            f"api:  {api_booked} booked, {rejected} contested attempts refused (409), "
            f"{api_s:.1f} s = {api_rate:.0f}/s; p50 {percentile(api_latencies, 0.5)} ms, "
            f"p99 {percentile(api_latencies, 0.99)} ms"
        )
        print(
            f"bare: {bare_booked} booked, {bare_s:.1f} s = {bare_rate:.0f}/s; "
            f"p50 {percentile(bare_latencies, 0.5)} ms, p99 {percentile(bare_latencies, 0.99)} ms"
        )
        api_cpu_ms = round(api_cpu * 1000 / (api_booked + rejected), 1)
        bare_cpu_ms = round(bare_cpu * 1000 / bare_attempts, 1)
        print(
            f"CPU per booking attempt (server + database backends + client): api {api_cpu_ms} ms,"
            f" bare {bare_cpu_ms} ms"
        )
        server_ms, database_ms, client_ms = (
            round(part * 1000 / (api_booked + rejected), 1) for part in api_parts
        )
        _, bare_database_ms, bare_client_ms = (
            round(part * 1000 / bare_attempts, 1) for part in bare_parts
        )
        print(
            f"  of which: api server {server_ms} ms, database backends {database_ms} ms, client"
            f" {client_ms} ms; bare database backends {bare_database_ms} ms, client"
            f" {bare_client_ms} ms"
        )
        print(
            f"paced at {offered}/s offered ({count} bookings in {paced_s:.1f} s per kind): "
            f"api p50 {percentile(api_paced_latencies, 0.5)} ms, "
            f"p99 {percentile(api_paced_latencies, 0.99)} ms; "
            f"bare p99 {percentile(bare_paced_latencies, 0.99)} ms"
        )
        doubles = await double_bookings(dsn)
        print(
            json.dumps(
                {
                    "api_bookings_per_s": round(api_rate, 1),
                    "bare_bookings_per_s": round(bare_rate, 1),
                    "ratio": round(api_rate / bare_rate, 3),
                    "p99_ms": percentile(api_latencies, 0.99),
                    "bare_p99_ms": percentile(bare_latencies, 0.99),
                    "p99_ms_paced": percentile(api_paced_latencies, 0.99),
                    "bare_p99_ms_paced": percentile(bare_paced_latencies, 0.99),
                    "paced_offered_per_s": offered,
                    "p50_ms": percentile(api_latencies, 0.5),
                    "api_cpu_ms_per_booking": api_cpu_ms,
                    "bare_cpu_ms_per_booking": bare_cpu_ms,
                    "cpu_ratio": round(bare_cpu_ms / api_cpu_ms, 3),
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
    # The server processes run on uvloop (uvicorn picks it); so do the load generator and the
    # bare transactions here, so that both sides of the ratio have the same event loop.
    uvloop.run(main())
