"""Run inside a network namespace holding only `lo` (see test_room_page.py): the service, an
optional coturn, headless Debian chromium on the consult-room page, and an aiortc peer.

Usage: room_page_scenario.py ROOM_ID PAGE_TOKEN PEER_TOKEN PAGE_USER_ID MODE
MODE: direct, relay (TURN only), nocamera (the page's browser may use its microphone but is
refused the camera) or weaknet (the pre-call check finds too little bandwidth for video). Settings come from TELEHEALTH_* variables. Prints one JSON object with
what it observed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
from typing import Any

import aioice.ice
import uvicorn
from playwright.async_api import async_playwright

from telehealth.app import create_app
from telehealth.settings import Settings
from tests.e2e.page_support import wait_until
from tests.rtc_client import MediaLeg, Participant

FAKE_UI = "--use-fake-ui-for-media-stream"  # grants every permission prompt
CHROMIUM_FLAGS = [
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--no-sandbox",
]

SELECTED_PAIR_JS = """async () => {
  const pc = window.telehealthRoom.peers.values().next().value;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((r) => { if (r.type === "candidate-pair" && r.state === "succeeded" && r.nominated) pair = r; });
  if (!pair) return null;
  return { local: stats.get(pair.localCandidateId).candidateType,
           remote: stats.get(pair.remoteCandidateId).candidateType };
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def full_call(page: Any, peer: Participant, page_user: str, result: dict[str, Any]) -> None:
    result["title"] = await page.title()
    await page.click("#precall")
    await wait_until(page, "window.telehealthRoom.report", timeout_s=30)
    result["precall"] = await page.evaluate("window.telehealthRoom.report")
    result["precall_frames"] = await page.evaluate("window.telehealthRoom.frames.precall")
    await page.click("#join")
    peer_frames = f"window.telehealthRoom.frames['{peer.me}'] || 0"
    await wait_until(page, f"({peer_frames}) >= 30", timeout_s=30)
    result["page_frames"] = await page.evaluate(peer_frames)
    await wait_until(
        page, "document.getElementById('quality').dataset.level !== 'unknown'", timeout_s=30
    )
    result["quality"] = await page.get_attribute("#quality", "data-level")
    result["peer_frames"] = await peer.wait_frames(page_user, 10)
    result["pair"] = await page.evaluate(SELECTED_PAIR_JS)
    await page.click("#mute")
    result["muted_relayed"] = (await peer.signalling.expect("mute"))["audio"]
    await page.click("#camera")
    result["camera_off_relayed"] = (await peer.signalling.expect("mute"))["video"]
    await page.click("#audioonly")
    result["mode_relayed"] = (await peer.signalling.expect("media_mode"))["mode"]
    await page.click("#lang")
    result["english_heading"] = await page.text_content("h1")
    await page.click("#leave")
    result["left"] = (await peer.signalling.expect("peer_left"))["type"]


async def without_camera(
    page: Any, peer: Participant, page_user: str, result: dict[str, Any]
) -> None:
    """The camera is refused: the page joins with its microphone alone and says so."""
    await page.click("#join")
    result["mode_relayed"] = (await peer.signalling.expect("media_mode"))["mode"]
    peer_frames = f"window.telehealthRoom.frames['{peer.me}'] || 0"
    await wait_until(page, f"({peer_frames}) >= 30", timeout_s=30)
    result["page_frames"] = await page.evaluate(peer_frames)  # it still sees the other
    result["peer_audio_frames"] = await peer.wait_audio(page_user, 100)  # 2 s of its voice
    result["peer_video_frames"] = peer.frames.get(page_user, 0)
    result["local_video_tracks"] = await page.evaluate(
        "window.telehealthRoom.local.getVideoTracks().length"
    )
    result["audio_only_pressed"] = await page.get_attribute("#audioonly", "aria-pressed")
    result["camera_disabled"] = await page.is_disabled("#camera")
    result["status_vi"] = await page.text_content("#status")
    await page.click("#lang")
    result["status_en"] = await page.text_content("#status")
    await page.click("#leave")
    result["left"] = (await peer.signalling.expect("peer_left"))["type"]


async def through_service_relay(
    page: Any, peer: Participant, page_user: str, result: dict[str, Any]
) -> None:
    """No TURN server and relay-only ICE: the browsers cannot reach each other, so the page
    falls back to the service's relay; the peer relays too. VP8 from chromium reaches the
    peer, and the peer's reaches chromium, forwarded without decoding."""
    leg = MediaLeg(peer.signalling, peer.welcome["ice_servers"])
    await page.click("#join")
    await wait_until(page, "window.telehealthRoom.relay !== null", timeout_s=60)
    result["relay_reply"] = (await leg.start("relay_offer", "relay_answer"))["type"]
    await wait_until(page, "(window.telehealthRoom.frames.relay || 0) >= 30", timeout_s=30)
    result["page_frames"] = await page.evaluate("window.telehealthRoom.frames.relay")
    result["peer_frames"] = await leg.wait_frames(30)
    await leg.close()
    await page.click("#leave")


async def on_weak_network(
    page: Any, peer: Participant, page_user: str, result: dict[str, Any]
) -> None:
    """The pre-call check advises audio only: the page joins audio only, says so, and the
    participant can turn video back on."""
    await page.click("#precall")
    await wait_until(page, "window.telehealthRoom.report", timeout_s=30)
    result["precall"] = await page.evaluate("window.telehealthRoom.report")
    await page.click("#join")
    result["mode_relayed"] = (await peer.signalling.expect("media_mode"))["mode"]
    result["peer_audio_frames"] = await peer.wait_audio(page_user, 100)
    peer_frames = f"window.telehealthRoom.frames['{peer.me}'] || 0"
    await wait_until(page, f"({peer_frames}) >= 30", timeout_s=30)
    result["page_frames"] = await page.evaluate(peer_frames)
    result["audio_only_pressed"] = await page.get_attribute("#audioonly", "aria-pressed")
    result["status_vi"] = await page.text_content("#status")
    await page.click("#lang")
    result["status_en"] = await page.text_content("#status")
    # A disabled camera track still sends a black frame now and then; real video is 30 fps.
    start = peer.frames.get(page_user, 0)
    await asyncio.sleep(3)
    before = peer.frames.get(page_user, 0)
    result["peer_video_fps_audio_only"] = (before - start) / 3
    await page.click("#audioonly")  # video back on
    result["mode_after_click"] = (await peer.signalling.expect("media_mode"))["mode"]
    await asyncio.sleep(2)  # the encoder wakes up
    start = peer.frames.get(page_user, 0)
    await asyncio.sleep(4)
    result["peer_video_fps_video"] = (peer.frames.get(page_user, 0) - start) / 4
    await page.click("#leave")
    result["left"] = (await peer.signalling.expect("peer_left"))["type"]


async def main(room_id: str, page_token: str, peer_token: str, page_user: str, mode: str) -> None:
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    settings = Settings()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"mode": mode}
    peer = Participant(base, room_id, peer_token)
    try:
        await peer.join()
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                args=CHROMIUM_FLAGS + ([] if mode == "nocamera" else [FAKE_UI]),
            )
            if mode == "nocamera":
                context = await browser.new_context(permissions=["microphone"])
                page = await context.new_page()
                await page.goto(f"{base}/room/{room_id}#token={page_token}")
                await without_camera(page, peer, page_user, result)
            elif mode == "service_relay":
                page = await browser.new_page()
                await page.goto(f"{base}/room/{room_id}?relay=1#token={page_token}")
                await through_service_relay(page, peer, page_user, result)
            elif mode == "weaknet":
                page = await browser.new_page()
                await page.goto(f"{base}/room/{room_id}#token={page_token}")
                await on_weak_network(page, peer, page_user, result)
            else:
                page = await browser.new_page()
                query = "?relay=1" if mode == "relay" else ""
                await page.goto(f"{base}/room/{room_id}{query}#token={page_token}")
                await full_call(page, peer, page_user, result)
            await browser.close()
    finally:
        with contextlib.suppress(Exception):
            await peer.leave()
        server.should_exit = True
        await serving
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
