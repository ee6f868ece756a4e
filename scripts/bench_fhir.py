"""Benchmark of the FHIR face; run through ``scripts/bench_fhir`` (see there for the flags).

The server runs in its own process (uvicorn, one worker) on loopback; the load comes from this
process with aiohttp, ``--connections`` requests in flight for ``--seconds`` per measurement.
The plain endpoint is an authenticated litestar handler returning a small JSON dict with no
database access: the ceiling the FHIR figures are compared to. Search latency of small and large
records is measured on one connection (no queueing), so it shows the cost of the query itself:
``Appointment?actor=Practitioner/<id>&_count=50`` (the same 60 matches in both records) and
``Appointment?status=booked&_count=50`` (matches grow with the record), run by an integrator
client with ``system/Appointment.rs``. The small record has 1,000 appointments; ``--large N``
copies more in bulk until there are N (see ``bench_fhir_appointments``), then runs ANALYZE.

The closed-loop measurements alternate in ``--rounds`` slices (plain, read, Patient read,
search, plain, ...), so that load from other work on a shared machine falls on all of them
alike and the ratios compare like with like. Closed-loop figures (each connection sends its next request when the last one is answered) are
throughputs; their p99 is mostly queueing, about connections / rate. ``read_p99_ms_paced`` is
the latency at a fixed offered rate below capacity (half the measured read rate, spread over
the same connections, timed from when each request was due), which is what a p99 target means.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import secrets
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import sqlalchemy as sa
import uvloop
from sqlmodel import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_fhir_appointments import (  # noqa: E402
    book_real_appointments,
    copy_appointments,
    widen,
)

from telehealth.auth.service import create_client  # noqa: E402
from telehealth.db import Database  # noqa: E402
from telehealth.demo import (  # noqa: E402
    _FAMILY,
    _GIVEN,
    _MIDDLE,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    seed_demo,
)
from telehealth.directory.identifiers import fold_name  # noqa: E402
from telehealth.directory.models import FacilityLevel, Gender, Organization, Patient  # noqa: E402
from telehealth.reactions import open_database, upgrade_database  # noqa: E402
from telehealth.settings import Settings  # noqa: E402

APPOINTMENTS_SMALL = 1_000
SEARCHED_OWN = 60  # the searched practitioner's appointments, in the small and large record
LOAD_BOUND_S = 420.0  # --large stops copying after this, whatever N asked for
INTEGRATOR_ID, INTEGRATOR_SECRET = "bench-his", secrets.token_urlsafe(16)
PG_ADMIN = os.environ.get(
    "TELEHEALTH_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def serve(url: str, port: int) -> None:
    import uvicorn
    from litestar import get

    from telehealth.app import create_app

    @get("/bench/plain", sync_to_thread=False)
    def plain() -> dict[str, Any]:
        return {"resourceType": "Basic", "id": "plain", "code": {"text": "a plain JSON answer"}}

    app = create_app(Settings(database_url=url, data_dir=Path(tempfile.gettempdir())))
    app.register(plain)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


async def load_patients(db: Database, organization_id: uuid.UUID, count: int, start: int) -> None:
    """Patients through the ORM, so that the write-through stores and indexes them."""
    rng = random.Random(start)
    done = 0
    while done < count:
        chunk = min(1000, count - done)
        async with db.unit_of_work() as session:
            for i in range(start + done, start + done + chunk):
                gender = rng.choice([Gender.MALE, Gender.FEMALE])
                name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE[gender])} {rng.choice(_GIVEN[gender])}"
                session.add(
                    Patient(
                        full_name=name,
                        name_folded=fold_name(name),
                        gender=gender,
                        birth_date=date(
                            1940 + rng.randrange(80), 1 + rng.randrange(12), 1 + rng.randrange(28)
                        ),
                        national_id=f"082{i:09d}",
                        organization_id=organization_id,
                    )
                )
        done += chunk


async def add_integrator(db: Database) -> tuple[str, str]:
    """A hospital information system allowed to search appointments (the demo client is not)."""
    async with db.unit_of_work() as session:
        await create_client(
            session,
            None,
            client_id=INTEGRATOR_ID,
            name="HIS thử tải",
            scopes="system/Appointment.rs",
            secret=INTEGRATOR_SECRET,
        )
    return INTEGRATOR_ID, INTEGRATOR_SECRET


async def client_token(http: aiohttp.ClientSession, base: str, client_id: str, secret: str) -> str:
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    async with http.post(f"{base}/api/auth/token", data=form) as response:
        return str((await response.json())["access_token"])


async def analyze(db: Database) -> None:
    """Fresh planner statistics after a bulk load, as an operator runs after one."""
    async with db.unit_of_work() as session:
        await session.exec(sa.text("ANALYZE"))  # type: ignore[call-overload]


async def search_p99s(
    http: aiohttp.ClientSession, searches: dict[str, str], headers: dict[str, str], seconds: float
) -> dict[str, float]:
    """p99 (ms) of each search on one connection, after a check that it returns a full page
    and a second of warm-up."""
    p99s = {}
    for name, url in searches.items():
        async with http.get(url, headers=headers) as response:
            assert len((await response.json())["entry"]) == 50, (name, url)
        await measure(http, url, headers, 1, 1)
        _, latency = await measure(http, url, headers, seconds, 1)
        p99s[name] = round(latency, 1)
    return p99s


async def add_station(db: Database, code: str) -> uuid.UUID:
    async with db.unit_of_work() as session:
        org = Organization(
            name=f"Trạm Y tế thử tải {code}",
            name_folded=fold_name(f"Tram Y te thu tai {code}"),
            level=FacilityLevel.COMMUNE,
            moh_code=code,
        )
        session.add(org)
        await session.flush()
        return org.id


async def measure(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], seconds: float, connections: int
) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) with ``connections`` requests in flight."""
    count, elapsed, latencies = await closed_loop(http, url, headers, seconds, connections)
    return count / elapsed, p99(latencies)


def p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[int(len(ordered) * 0.99) - 1] * 1000


async def closed_loop(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], seconds: float, connections: int
) -> tuple[int, float, list[float]]:
    """Requests answered, seconds taken and each latency, ``connections`` requests in flight."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with http.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, (response.status, url)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return len(latencies), time.perf_counter() - started, latencies


async def interleaved(
    http: aiohttp.ClientSession,
    urls: dict[str, str],
    headers: dict[str, str],
    seconds: float,
    connections: int,
    rounds: int,
) -> dict[str, tuple[float, float]]:
    """Rate and p99 of each URL, measured in ``rounds`` alternating slices of ``seconds`` /
    ``rounds`` each, so that load from other work on the machine falls on all of them alike
    and their ratios stay comparable."""
    totals: dict[str, tuple[int, float, list[float]]] = {name: (0, 0.0, []) for name in urls}
    for _ in range(rounds):
        for name, url in urls.items():
            count, elapsed, latencies = await closed_loop(
                http, url, headers, seconds / rounds, connections
            )
            done, spent, seen = totals[name]
            totals[name] = (done + count, spent + elapsed, seen + latencies)
    return {name: (done / spent, p99(seen)) for name, (done, spent, seen) in totals.items()}


async def measure_paced(
    http: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    seconds: float,
    connections: int,
    rate: float,
) -> float:
    """p99 latency (ms) with requests due at a fixed ``rate``, at most ``connections`` in
    flight; each is timed from when it was due, so a late start counts against the server."""
    due: asyncio.Queue[float | None] = asyncio.Queue()
    start = time.perf_counter() + 0.1
    for i in range(int(seconds * rate)):
        due.put_nowait(start + i / rate)
    for _ in range(connections):
        due.put_nowait(None)
    latencies: list[float] = []

    async def worker() -> None:
        while (when := await due.get()) is not None:
            await asyncio.sleep(max(0.0, when - time.perf_counter()))
            async with http.get(url, headers=headers) as response:
                await response.read()
                assert response.status == 200, (response.status, url)
            latencies.append(time.perf_counter() - when)

    await asyncio.gather(*(worker() for _ in range(connections)))
    return p99(latencies)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    name = f"bench_fhir_{secrets.token_hex(4)}"
    if args.sqlite:
        folder = Path(tempfile.mkdtemp())
        url = f"sqlite+aiosqlite:///{folder}/bench.db"
    else:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = (
            PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
            + f"/{name}"
        )
    server = None
    try:
        await asyncio.to_thread(upgrade_database, url)
        db = open_database(Settings(database_url=url, data_dir=Path(tempfile.gettempdir())))
        async with db.unit_of_work() as session:
            await seed_demo(session)
        station = await add_station(db, "99001")
        await load_patients(db, station, 1000, 0)
        print(f"loaded 1,000 patients at the searched facility ({url.split('://')[0]})", flush=True)
        integrator = await add_integrator(db)
        async with db.unit_of_work() as session:
            patients = (
                await session.exec(select(Patient.id).where(Patient.organization_id == station))
            ).all()
        record = await book_real_appointments(db, list(patients))
        dsn = None if args.sqlite else url.replace("+asyncpg", "")
        await copy_appointments(
            db, dsn, record, APPOINTMENTS_SMALL - record.stored, SEARCHED_OWN - 1, float("inf")
        )
        await analyze(db)
        print(
            f"stored {record.stored:,} appointments ({len(record.others) + 1} specialists), "
            "then ANALYZE",
            flush=True,
        )
        port = 18000 + random.randrange(1000)
        server = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", url, str(port)
        )
        base = f"http://127.0.0.1:{port}"
        connector = aiohttp.TCPConnector(limit=args.connections)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(200):
                try:
                    async with http.get(f"{base}/health") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            form = {
                "grant_type": "client_credentials",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
            }
            async with http.post(f"{base}/api/auth/token", data=form) as response:
                token = (await response.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
            async with http.get(
                f"{base}/fhir/Organization?identifier=82001", headers=headers
            ) as response:
                org_id = (await response.json())["entry"][0]["resource"]["id"]
            async with http.get(
                f"{base}/fhir/Patient?organization={station}&_count=1", headers=headers
            ) as response:
                patient_id = (await response.json())["entry"][0]["resource"]["id"]
            search = f"{base}/fhir/Patient?organization=Organization/{station}&_count=50"
            async with http.get(search, headers=headers) as response:
                assert len((await response.json())["entry"]) == 50
            seconds, connections = args.seconds, args.connections
            # The load generator's own garbage collections (its heap holds the service's
            # modules too) would stall every request in flight and be counted as the server's.
            gc.collect()
            gc.freeze()
            await measure(http, f"{base}/bench/plain", headers, 1, connections)  # warm up
            read_url = f"{base}/fhir/Organization/{org_id}"
            figures = await interleaved(
                http,
                {
                    "plain": f"{base}/bench/plain",
                    "read": read_url,
                    "patient": f"{base}/fhir/Patient/{patient_id}",
                    "search50": search,
                },
                headers,
                seconds,
                connections,
                args.rounds,
            )
            (plain, plain_p99), (read, read_p99) = figures["plain"], figures["read"]
            (patient, patient_p99), (search50, search_p99) = figures["patient"], figures["search50"]
            print(f"plain litestar JSON: {plain:.0f}/s p99 {plain_p99:.1f} ms", flush=True)
            print(f"FHIR read Organization: {read:.0f}/s p99 {read_p99:.1f} ms", flush=True)
            print(
                f"FHIR read Patient (audited): {patient:.0f}/s p99 {patient_p99:.1f} ms", flush=True
            )
            print(
                f"FHIR search of 50 Patients: {search50:.0f}/s p99 {search_p99:.1f} ms", flush=True
            )
            paced_rate = round(read / 2)
            read_paced_p99 = await measure_paced(
                http, read_url, headers, seconds, connections, paced_rate
            )
            print(
                f"FHIR read Organization offered {paced_rate}/s over {connections} connections:"
                f" p99 {read_paced_p99:.1f} ms",
                flush=True,
            )
            result: dict[str, Any] = {
                "database": "sqlite" if args.sqlite else "postgresql",
                "connections": connections,
                "plain_per_s": round(plain),
                "plain_p99_ms": round(plain_p99, 1),
                "read_per_s": round(read),
                "patient_read_per_s": round(patient),
                "search50_per_s": round(search50),
                "read_ratio": round(read / plain, 3),
                "search_ratio": round(search50 / plain, 3),
                "read_p99_ms": round(read_p99, 1),
                "read_paced_per_s": paced_rate,
                "read_p99_ms_paced": round(read_paced_p99, 1),
                "patient_read_p99_ms": round(patient_p99, 1),
                "search50_p99_ms": round(search_p99, 1),
            }
            token = await client_token(http, base, *integrator)
            integrator_headers = {**headers, "Authorization": f"Bearer {token}"}
            searches = {
                "actor": f"{base}/fhir/Appointment?actor=Practitioner/"
                f"{record.searched.practitioner}&_count=50",
                "booked": f"{base}/fhir/Appointment?status=booked&_count=50",
            }
            small = await search_p99s(http, searches, integrator_headers, seconds)
            for key, value in small.items():
                result[f"search_{key}_p99_ms_small"] = value
            result["search_p99_ms_small"] = max(small.values())
            print(
                f"Appointment searches of 50 on one connection, {record.stored:,} appointments:"
                f" {small} ms (p99)",
                flush=True,
            )
            if args.large:
                started = time.perf_counter()
                widen(record, practitioners=2_000, patients=50_000, requesters=500)
                await copy_appointments(
                    db, dsn, record, args.large - record.stored, 0, started + LOAD_BOUND_S
                )
                loaded = time.perf_counter() - started
                await analyze(db)
                print(
                    f"copied {record.stored - APPOINTMENTS_SMALL:,} more appointments in"
                    f" {loaded:.0f} s, then ANALYZE (as an operator would after a bulk load)",
                    flush=True,
                )
                large = await search_p99s(http, searches, integrator_headers, seconds)
                print(
                    f"the same searches, {record.stored:,} appointments: {large} ms (p99)",
                    flush=True,
                )
                result["large_appointments"] = record.stored
                result["large_load_s"] = round(loaded)
                for key, value in large.items():
                    result[f"search_{key}_p99_ms_large"] = value
                    result[f"search_{key}_large_ratio"] = round(value / small[key], 2)
                result["search_p99_ms_large"] = max(large.values())
                result["search_large_ratio"] = round(
                    result["search_p99_ms_large"] / result["search_p99_ms_small"], 2
                )
        await db.dispose()
        return result
    finally:
        if server is not None:
            server.terminate()
            await server.wait()
        if not args.sqlite:
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sqlite", action="store_true", help="use SQLite instead of PostgreSQL")
    parser.add_argument(
        "--large",
        type=int,
        default=0,
        help="then grow the record to this many appointments (bulk COPY) and search again",
    )
    parser.add_argument(
        "--seconds", type=float, default=6.0, help="per measurement (over all rounds)"
    )
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate the measurements in this many slices"
    )
    result = uvloop.run(run(parser.parse_args()))  # the loop the server processes run on
    print(json.dumps(result))


if __name__ == "__main__":
    main()
