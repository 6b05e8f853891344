"""Per-host limits from echo.toml override the source defaults and keep the header dialect."""

from __future__ import annotations

from pathlib import Path

import pytest

from echo_archive.config import load_config
from echo_archive.errors import ConfigError
from echo_archive.harvest.limits import limits_from_config


def test_limits_tables_load_and_override(vault_path: Path) -> None:
    cfg = vault_path / "echo.toml"
    cfg.write_text(
        cfg.read_text()
        + '\n[limits."api.github.com"]\nrate = 0.5\nconcurrency = 1\n'
        + '\n[limits."feeds.example.org"]\nrate = 2\nburst = 4\nconcurrency = 3\n'
    )
    config = load_config(cfg)
    assert config.limits["feeds.example.org"].burst == 4
    limits = limits_from_config(
        {h: (v.rate, v.burst, v.concurrency) for h, v in config.limits.items()}
    )
    github = limits.config_for("api.github.com")
    assert github.rate == 0.5
    assert github.rate_limit_headers == "github"  # live pacing by x-ratelimit-* still applies
    other = limits.config_for("feeds.example.org")
    assert (other.rate, other.burst, other.concurrency) == (2, 4, 3)
    assert other.rate_limit_headers is None


def test_bad_limit_is_named(vault_path: Path) -> None:
    cfg = vault_path / "echo.toml"
    cfg.write_text(cfg.read_text() + '\n[limits."x.org"]\nrate = 0\n')
    with pytest.raises(ConfigError, match=r"limits\.x\.org\.rate"):
        load_config(cfg)
