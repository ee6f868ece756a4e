"""Files the service keeps are readable by its own user only.

The SQLite database (with its -wal and -shm files), the generated signing key, attachments and
recordings are patient data or secrets. Directories are made 0700 and files 0600 as they are
created, whatever the process's umask (``telehealth serve`` and a bare ``uvicorn --factory``
alike); a data directory or database that an earlier version left wider is narrowed at start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("telehealth.storage")

DIR_MODE = 0o700
FILE_MODE = 0o600
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def private_dir(path: Path) -> Path:
    """``path``, with each directory of it that is missing made 0700 (existing ones are left
    as they are: the data directory may sit in a shared place)."""
    for directory in reversed([path, *path.parents]):
        if not directory.exists():
            directory.mkdir(mode=DIR_MODE, exist_ok=True)  # exist_ok: processes start together
    return path


def narrow(path: Path, mode: int) -> None:
    """Give ``path`` ``mode`` if group or others may use it now (left by an earlier version)."""
    try:
        if path.stat().st_mode & _OTHERS:
            path.chmod(mode)
    except FileNotFoundError:
        pass
    except PermissionError:
        log.warning("%s is readable by others and not ours to change: chmod %o it", path, mode)


def private_data_dir(data_dir: Path) -> Path:
    """The data directory, made (or narrowed to) 0700."""
    private_dir(data_dir)
    narrow(data_dir, DIR_MODE)
    return data_dir


def create_private_file(path: Path) -> int:
    """A new file at ``path`` (which must not exist), 0600, open for writing."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)


def private_sqlite_file(database_url: str) -> None:
    """Create the SQLite file 0600 before SQLite does: it would make it 0644, and its -wal
    and -shm files take the database file's mode. An in-memory database has no file."""
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    private_dir(path.parent)
    # Only a file that is not there yet is opened here: closing any descriptor of a database
    # file releases every POSIX lock this process holds on it, its open connections' too.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    for suffix in ("", "-wal", "-shm", "-journal"):
        narrow(path.with_name(path.name + suffix), FILE_MODE)
