"""Time until a form is usable, and bytes transferred for it, over an emulated slow link.

Starts the service on a throw-away SQLite database with the demo province, logs a commune
doctor in over a fast link, then loads the form with an empty cache under Chrome DevTools
network emulation. "Usable" means the form's fields are on screen and its script has attached
the as-you-type checks (``form[data-ready]``). The floor is ``/health`` (a few bytes) under the
same emulation: what any page costs at this round-trip time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.async_api import CDPSession, Page, async_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SLOW_LINK = {
    "offline": False,
    "latency": 400,  # ms round trip
    "downloadThroughput": 400_000 / 8,  # bytes per second
    "uploadThroughput": 200_000 / 8,
}
FORMS = {
    "patient": ("/patients/new", 'form[data-validate="patient"][data-ready="1"]'),
    "consult": ("/consults/new", 'form[data-form="consult"][data-ready="1"]'),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(data_dir: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TELEHEALTH_DATA_DIR": data_dir, "TELEHEALTH_PORT": str(port)}
    env.pop("TELEHEALTH_DATABASE_URL", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "telehealth"), "serve", "--demo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise SystemExit("the service did not start within 60 s")


async def timed_load(page: Page, cdp: CDPSession, url: str, ready: str | None) -> tuple[float, int]:
    """Seconds until ``ready`` is visible (or the load event), and bytes received."""
    received: dict[str, float] = {}

    def on_finished(event: dict[str, Any]) -> None:
        received[event["requestId"]] = event["encodedDataLength"]

    cdp.on("Network.loadingFinished", on_finished)
    started = time.perf_counter()
    await page.goto(url, wait_until="commit" if ready else "load")
    if ready:
        await page.wait_for_selector(ready, state="attached", timeout=60_000)
    elapsed = time.perf_counter() - started
    await page.wait_for_load_state("load")
    await asyncio.sleep(0.2)  # let the last loadingFinished events arrive
    cdp.remove_listener("Network.loadingFinished", on_finished)
    return elapsed, int(sum(received.values()))


async def measure(base: str, form: str, runs: int) -> dict[str, Any]:
    path, ready = FORMS[form]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = await browser.new_context(viewport={"width": 360, "height": 740})
        page = await context.new_page()
        await page.goto(f"{base}/login")
        await page.fill("#f-username", "bs.xa1")
        await page.fill("#f-password", "telehealth-demo-only")
        await page.click("main button[type=submit]")
        await page.wait_for_url(f"{base}/")
        cdp = await context.new_cdp_session(page)
        await cdp.send("Network.enable")
        await cdp.send("Network.emulateNetworkConditions", SLOW_LINK)
        cold: list[float] = []
        warm: list[float] = []
        floor: list[float] = []
        cold_bytes = warm_bytes = 0
        for _ in range(runs):
            await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            seconds, cold_bytes = await timed_load(page, cdp, base + path, ready)
            cold.append(seconds)
            await cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
            await timed_load(page, cdp, base + path, ready)  # fill the cache
            seconds, warm_bytes = await timed_load(page, cdp, base + path, ready)
            warm.append(seconds)
            seconds, _ = await timed_load(page, cdp, base + "/health", None)
            floor.append(seconds)
        await browser.close()
    form_ready = statistics.median(cold)
    floor_s = statistics.median(floor)
    return {
        "form": form,
        "form_ready_s": round(form_ready, 3),
        "form_bytes": cold_bytes,
        "form_ready_warm_s": round(statistics.median(warm), 3),
        "form_bytes_warm": warm_bytes,
        "floor_s": round(floor_s, 3),
        "ratio_to_floor": round(form_ready / floor_s, 2),
        "link": {"down_kbps": 400, "up_kbps": 200, "rtt_ms": 400},
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--form", choices=sorted(FORMS), default="patient")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data_dir:
        service = start_service(data_dir, port)
        try:
            result = asyncio.run(
                asyncio.wait_for(measure(f"http://127.0.0.1:{port}", args.form, args.runs), 300)
            )
        finally:
            service.terminate()
            service.wait(timeout=30)
    print(
        f"form usable after {result['form_ready_s']} s, {result['form_bytes']} bytes",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
