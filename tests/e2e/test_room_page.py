"""The consult-room page in headless Debian chromium (fake camera), in a network namespace with
only `lo`: it joins with its token and receives video from an aiortc peer, directly and through
a real coturn with relay-only ICE and time-limited credentials."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from telehealth.db import Database
from telehealth.rtc.credentials import JoinClaims, issue_join_token
from telehealth.settings import Settings
from telehealth.timeutil import utcnow
from tests.e2e.conftest import ONE_AT_A_TIME
from tests.e2e.netns import loopback_namespace, unavailable
from tests.rtc_support import make_room

pytestmark = [pytest.mark.slow, ONE_AT_A_TIME]
SCENARIO = Path(__file__).with_name("room_page_scenario.py")
ROOT = Path(__file__).resolve().parents[2]
TURN_SECRET = "coturn-static-auth-secret"
TURN_PORT = 3478


@pytest.fixture
def backend() -> str:
    return "sqlite"  # all runs inside the namespace, where only a file database is reachable


def coturn_command(prefix: list[str]) -> list[str]:
    return [
        *prefix,
        "turnserver",
        "-n",
        "--listening-ip=127.0.0.1",
        "--relay-ip=127.0.0.1",
        f"--listening-port={TURN_PORT}",
        "--use-auth-secret",
        f"--static-auth-secret={TURN_SECRET}",
        "--realm=telehealth.test",
        "--allow-loopback-peers",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--fingerprint",
        "--min-port=49160",
        "--max-port=49260",
        "--log-file=stdout",
    ]


async def run_scenario(
    mode: str, db: Database, settings: Settings, tmp_path: Path
) -> dict[str, Any]:
    """Runs room_page_scenario.py in a fresh loopback namespace; returns what it observed."""
    if shutil.which(os.environ.get("CHROMIUM", "/usr/bin/chromium")) is None:
        unavailable("Debian chromium is not installed (apt-get install chromium)")
    if mode == "relay" and shutil.which("turnserver") is None:
        unavailable("coturn is not installed (apt-get install coturn)")
    made = await make_room(db, settings)
    now = utcnow()
    page_token = issue_join_token(
        settings, JoinClaims(made.room_id, made.requester, "requester", "bs.xa1"), now
    )
    peer_token = issue_join_token(
        settings, JoinClaims(made.room_id, made.specialist, "specialist", "bs.tim"), now
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TELEHEALTH_DATABASE_URL": settings.resolved_database_url,
        "TELEHEALTH_SECRET_KEY": settings.secret_key,
        "TELEHEALTH_DATA_DIR": str(tmp_path),
        "TELEHEALTH_STUN_URLS": json.dumps([f"stun:127.0.0.1:{TURN_PORT}"]),
        # The pre-call verdict, made certain: video on loopback, audio only on "weaknet".
        "TELEHEALTH_PRECALL_VIDEO_MIN_KBPS": "1000000" if mode == "weaknet" else "1",
    }
    if mode == "relay":
        env["TELEHEALTH_TURN_URLS"] = json.dumps([f"turn:127.0.0.1:{TURN_PORT}?transport=udp"])
        env["TELEHEALTH_TURN_SECRET"] = TURN_SECRET
    with loopback_namespace() as inside:
        turn = None
        if mode == "relay":
            turn = await asyncio.create_subprocess_exec(
                *coturn_command(inside),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        try:
            run = await asyncio.create_subprocess_exec(
                *inside,
                sys.executable,
                str(SCENARIO),
                str(made.room_id),
                page_token,
                peer_token,
                str(made.requester),
                mode,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            async with asyncio.timeout(120):
                out, err = await run.communicate()
        finally:
            if turn is not None:
                turn.terminate()
                await turn.wait()
    assert run.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("mode", ["direct", "relay"])
async def test_page_joins_and_receives_video(
    mode: str, db: Database, settings: Settings, tmp_path: Path
) -> None:
    result = await run_scenario(mode, db, settings, tmp_path)
    assert result["title"] == "Phòng hội chẩn"
    assert result["precall_frames"] > 0  # the service echoed the fake camera back
    assert result["precall"]["recommended_mode"] == "video"
    assert result["precall"]["bitrate_kbps"] > 0
    assert result["page_frames"] >= 30  # video from the aiortc peer reached the page
    assert result["quality"] in ("good", "fair", "poor")
    assert result["peer_frames"] >= 10  # and the page's fake camera reached the peer
    assert result["muted_relayed"] is True
    assert result["camera_off_relayed"] is True
    assert result["mode_relayed"] == "audio_only"
    assert result["english_heading"] == "Consult room"
    assert result["left"] == "peer_left"
    if mode == "relay":
        assert result["pair"]["local"] == "relay", result


async def test_page_without_camera_falls_back_to_audio_only(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The browser may use the microphone but is refused the camera: the call connects with
    audio, the page still shows the other side, and says so in Vietnamese and English."""
    result = await run_scenario("nocamera", db, settings, tmp_path)
    assert result["local_video_tracks"] == 0
    assert result["mode_relayed"] == "audio_only"  # the others are told
    assert result["peer_audio_frames"] >= 100  # the page's voice reached the peer
    assert result["peer_video_frames"] == 0
    assert result["page_frames"] >= 30  # and the peer's video reached the page
    assert result["audio_only_pressed"] == "true"
    assert result["camera_disabled"] is True
    assert result["status_vi"] == "Không dùng được camera; cuộc gọi chỉ có âm thanh."
    assert result["status_en"] == "Camera unavailable; the call is audio only."
    assert result["left"] == "peer_left"


async def test_page_on_a_weak_network_starts_audio_only(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The pre-call check finds too little bandwidth (the threshold is set above anything a
    network gives): the page joins audio only, says so, and video can be turned back on."""
    result = await run_scenario("weaknet", db, settings, tmp_path)
    assert result["precall"]["recommended_mode"] == "audio_only"
    assert result["mode_relayed"] == "audio_only"
    assert result["peer_audio_frames"] >= 100
    assert result["page_frames"] >= 30
    assert result["audio_only_pressed"] == "true"
    assert result["status_vi"].startswith("Mạng yếu: cuộc gọi chỉ có âm thanh.")
    assert result["status_en"].startswith("Weak network: the call is audio only.")
    assert result["mode_after_click"] == "video"
    assert result["peer_video_fps_audio_only"] <= 5  # no real video while audio only
    assert result["peer_video_fps_video"] >= 10, result  # video again (a 30 fps camera)
    assert result["left"] == "peer_left"


async def test_page_falls_back_to_the_service_relay(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    """Relay-only ICE without a TURN server: no path between the two; the page relays through
    the service, which forwards chromium's VP8 and the peer's without decoding them."""
    result = await run_scenario("service_relay", db, settings, tmp_path)
    assert result["relay_reply"] == "relay_answer"
    assert result["page_frames"] >= 30  # the peer's video, through the service, in chromium
    assert result["peer_frames"] >= 30  # chromium's video, through the service, decoded
