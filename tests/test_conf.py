"""The settings are declared once: reading, the checks and docs/settings.md follow from it."""

from pathlib import Path

from notifications.conf import SETTINGS, app_settings, markdown_tables

SETTINGS_DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def documented_tables() -> dict[str, str]:
    """docs/settings.md's tables, by the heading of the section each is in."""
    tables: dict[str, str] = {}
    heading = None
    for line in SETTINGS_DOC.read_text().splitlines(keepends=True):
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("|") and heading is not None:
            tables[heading] = tables.get(heading, "") + line
    return tables


def test_the_settings_doc_shows_what_is_declared():
    documented, declared = documented_tables(), markdown_tables()
    assert documented.keys() == declared.keys()
    for section, table in declared.items():
        assert documented[section] == table, (
            f"docs/settings.md, section {section!r}, should read:\n\n{table}"
        )


def test_every_default_follows_its_own_rule():
    assert [s.key for s in SETTINGS if s.rule(s.default)] == []


def test_values_are_read_afresh(settings):
    assert app_settings.PAGE_SIZE == 20
    settings.NOTIFICATIONS = {"PAGE_SIZE": 50}
    assert app_settings.PAGE_SIZE == 50
    settings.NOTIFICATIONS = None
    assert app_settings.PAGE_SIZE == 20


def test_values_are_given_as_the_code_uses_them(settings):
    settings.NOTIFICATIONS = {
        "RESUME_MARGIN_SECONDS": 90,
        "THROTTLE_RATES": {"write": None},
        "UNMUTABLE_CATEGORIES": ("security",),
        "WEBSOCKET_ORIGINS": ("https://example.com",),
    }
    assert app_settings.RESUME_MARGIN.total_seconds() == 90  # a timedelta
    assert app_settings.THROTTLE_RATES == {"ticket": "30/minute", "write": None}
    assert app_settings.UNMUTABLE_CATEGORIES == ["security"]
    assert app_settings.WEBSOCKET_ORIGINS == ["https://example.com"]
