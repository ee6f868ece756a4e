"""Migration files sort in the order Alembic applies them: reading the folder top to bottom
is reading the schema's history."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.script import ScriptDirectory

from telehealth.migrate import MIGRATIONS, alembic_config


def test_file_order_is_apply_order() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, "the migrations branch: re-chain the newest"
    applied = list(reversed(list(script.walk_revisions())))  # base first
    names = [Path(revision.path).name for revision in applied]
    assert names == sorted(path.name for path in (MIGRATIONS / "versions").glob("*.py"))
    for revision, name in zip(applied, names, strict=True):
        assert re.fullmatch(r"\d{4}_\w+\.py", name), name
        assert name.startswith(f"{revision.revision}_"), f"{name} holds {revision.revision}"
