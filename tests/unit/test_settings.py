"""Settings: environment over file over defaults; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.errors import ConfigurationError
from adapter.settings import Settings, mask_url


def test_the_environment_wins_over_the_file_and_the_file_over_the_defaults(tmp_path: Path) -> None:
    conf = tmp_path / "cdgi.toml"
    conf.write_text('[cdgi]\nprefix = "prod"\nprefetch = 10\nparty_id = "DC2"\n')
    s = Settings.from_env({"CDGI_CONFIG": str(conf), "CDGI_PREFETCH": "20"})
    assert (s.prefix, s.prefetch, s.party_id, s.max_depth) == ("prod", 20, "DC2", 64)
    assert (s.exchange_in, s.queue_in, s.queue_dead) == ("prod.in", "prod.in.q", "prod.dead")


def test_an_unknown_setting_in_the_file_is_named(tmp_path: Path) -> None:
    conf = tmp_path / "cdgi.toml"
    conf.write_text("prefetc = 10\n")
    with pytest.raises(ConfigurationError, match="prefetc"):
        Settings.from_env({"CDGI_CONFIG": str(conf)})


def test_a_number_that_is_not_one_says_which_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="CDGI_PREFETCH"):
        Settings.from_env({"CDGI_PREFETCH": "many"})


def test_the_pin_comes_from_the_variable_or_the_file_and_is_never_shown(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("987654\n")
    assert Settings.from_env({}).read_pin({"CDGI_CARD_PIN": "1234"}) == "1234"
    s = Settings.from_env({"CDGI_PIN_FILE": str(pin_file)})
    assert s.read_pin({}) == "987654"
    assert "987654" not in repr(s) and "987654" not in str(s.masked())
    with pytest.raises(ConfigurationError, match="CDGI_CARD_PIN"):
        Settings.from_env({}).read_pin({})


def test_passwords_in_urls_are_masked() -> None:
    assert mask_url("amqp://guest:secret@host:5672/%2F") == "amqp://guest:***@host:5672/%2F"
    s = Settings.from_env({"CDGI_DATABASE_URL": "postgresql://u:hunter2@db/cdgi"})
    assert "hunter2" not in str(s.masked())
