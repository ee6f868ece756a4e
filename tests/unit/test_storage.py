"""Directories 0700 and files 0600 whatever the umask; what an earlier version left wider is
narrowed; directories that already existed outside are left alone."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from telehealth.storage import private_data_dir, private_dir, private_sqlite_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_missing_directories_are_made_private_and_existing_ones_left(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    made = private_dir(tmp_path / "a" / "b")
    assert _mode(tmp_path / "a") == _mode(made) == 0o700
    assert _mode(tmp_path) == 0o755


def test_a_wider_data_directory_and_database_left_by_an_earlier_version_are_narrowed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    for name in ("telehealth.db", "telehealth.db-wal"):
        (data / name).write_bytes(b"")
        (data / name).chmod(0o644)
    private_data_dir(data)
    private_sqlite_file(f"sqlite+aiosqlite:///{data / 'telehealth.db'}")
    assert _mode(data) == 0o700
    assert _mode(data / "telehealth.db") == _mode(data / "telehealth.db-wal") == 0o600


def test_a_new_database_file_is_created_private_and_memory_needs_none(tmp_path: Path) -> None:
    private_sqlite_file(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'x.db'}")
    assert _mode(tmp_path / "new") == 0o700 and _mode(tmp_path / "new" / "x.db") == 0o600
    private_sqlite_file("sqlite+aiosqlite://")
    private_sqlite_file("sqlite+aiosqlite:///:memory:")
