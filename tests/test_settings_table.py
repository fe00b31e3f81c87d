"""README.md's Configuration table is what app/core/config.py's Settings say
(scripts/settings_table): a setting added, removed, renamed or re-described without
regenerating the table fails here."""

from __future__ import annotations

import pytest
from pydantic import Field, create_model

import scripts.settings_table as settings_table
from app.core.config import Settings


def test_the_readme_table_is_the_settings_class():
    readme = settings_table.README.read_text()
    assert settings_table.START in readme and settings_table.END in readme
    assert settings_table.updated(readme) == readme, (
        "README.md's Configuration table is stale: run .venv/bin/python -m scripts.settings_table"
    )


def test_every_setting_has_a_row_with_its_default_and_description():
    table = settings_table.table()
    for name, field in Settings.model_fields.items():
        variable = f"| `ASSAY_{name.upper()}` |"
        row = next(line for line in table.splitlines() if line.startswith(variable))
        assert field.description and field.description.replace("|", "\\|") in row, name
    assert "| `ASSAY_MAX_UPLOAD_BYTES` | `209715200` (200 MiB) |" in table
    assert "| `ASSAY_SESSION_IDLE_TIMEOUT_S` | `28800` (8 h) |" in table
    assert "| `ASSAY_TEMPLATES_DIR` | `<repo>/templates` |" in table  # not this machine's path


def test_a_setting_without_a_description_is_refused(monkeypatch):
    bare = create_model("Bare", __base__=Settings, undocumented=(int, Field(default=1)))
    monkeypatch.setattr(settings_table, "Settings", bare)
    with pytest.raises(settings_table.MissingDescription, match=r"Settings\.undocumented"):
        settings_table.table()


def test_a_changed_setting_makes_the_readme_stale(monkeypatch):
    readme = settings_table.README.read_text()
    more = create_model(
        "More", __base__=Settings, new_limit=(int, Field(default=7, description="a new limit"))
    )
    monkeypatch.setattr(settings_table, "Settings", more)
    regenerated = settings_table.updated(readme)
    assert regenerated != readme
    assert "| `ASSAY_NEW_LIMIT` | `7` | a new limit |" in regenerated
