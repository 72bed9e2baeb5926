"""The settings file: strict validation with messages that name the key, and careful write-back."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sparecycles.config import ConfigError, Settings, load_settings, update_settings_file, validate_settings
from tests.conftest import run_cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

INVALID_FILES = [
    ("wrong type", "[work]\nidle_threshold = 10\n", "work.idle_threshold", "valid string"),
    ("unknown key", '[work]\nidle_treshold = "5m"\n', "work.idle_treshold", "idle_threshold"),
    ("unknown section", '[wrok]\nidle_threshold = "5m"\n', "wrok", "allowed keys in the top level"),
    ("duration out of range", '[work]\nidle_threshold = "2d"\n', "work.idle_threshold", "from 5s to 24h"),
    ("not a duration", '[work]\nresume_after = "soon"\n', "work.resume_after", "90m"),
    ("bad schedule", '[schedule]\nwindows = ["Mon-Fri nights"]\n', "schedule.windows", "Mon-Fri 19:00-08:00"),
    ("bad time zone", '[general]\ntimezone = "Mars/Olympus"\n', "general.timezone", "Europe/Berlin"),
    ("resume above cap", "[gpu]\nmax_temperature_c = 70\nresume_temperature_c = 80\n", "gpu", "must be below"),
    ("out of range", "[gpu]\nmax_temperature_c = 120\n", "gpu.max_temperature_c", "from 50 to 95"),
    ("bad choice", '[general]\nlog_level = "loud"\n', "general.log_level", "'debug'"),
    ("bad url", '[marketplace]\nurl = "ftp://x"\n', "marketplace.url", "http"),
]


@pytest.mark.parametrize(("case", "text", "key", "hint"), INVALID_FILES, ids=[c[0] for c in INVALID_FILES])
def test_invalid_file_names_key_value_and_what_is_allowed(
    tmp_path: Path, case: str, text: str, key: str, hint: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(path)
    message = str(raised.value)
    assert key in message
    assert hint in message
    assert str(path) in message


def test_broken_toml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[work\nidle = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        load_settings(path)


AGENT_CASES = [
    case for case in INVALID_FILES if case[0] in ("wrong type", "unknown key", "out of range", "bad schedule")
]


@pytest.mark.parametrize(("case", "text", "key", "hint"), AGENT_CASES, ids=[c[0] for c in AGENT_CASES])
def test_agent_refuses_to_start_on_an_invalid_file_and_leaves_it_unchanged(
    home: Path, case: str, text: str, key: str, hint: str
) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    original = ("# my settings, my layout\n" + text).encode()
    config.write_bytes(original)
    before = config.stat().st_mtime_ns
    result = run_cli(home, "agent", "--foreground", timeout=30)
    assert result.returncode == 2
    assert key in result.stderr
    assert "The file was not changed" in result.stderr
    assert config.read_bytes() == original
    assert config.stat().st_mtime_ns == before
    assert not (home / "state" / "agent.lock").exists()


def test_missing_file_means_defaults_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert load_settings(path) == Settings()
    assert not path.exists()


def test_write_back_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = (
        "# SpareCycles settings\n\n[gpu]\n# keep it cool\nmax_temperature_c = 80   # my card runs hot\n\n"
        '[work]\nidle_threshold = "10m"\n'
    )
    path.write_text(original)
    settings = update_settings_file(path, {"work": {"idle_threshold": "3m"}})
    assert settings.work.idle_threshold == "3m"
    assert path.read_text() == original.replace('idle_threshold = "10m"', 'idle_threshold = "3m"')


def test_write_back_adds_only_the_changed_key_to_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    update_settings_file(path, {"gpu": {"max_temperature_c": 75}})
    assert load_settings(path).gpu.max_temperature_c == 75
    assert "idle_threshold" not in path.read_text()  # no defaults poured in


def test_none_returns_a_key_to_its_default(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[gpu]\nmax_temperature_c = 70\n")
    assert update_settings_file(path, {"gpu": {"max_temperature_c": None}}).gpu.max_temperature_c == 83


def test_invalid_change_leaves_the_file_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = b"# mine\n[gpu]\nmax_temperature_c = 70\n"
    path.write_bytes(original)
    with pytest.raises(ConfigError, match=r"gpu\.max_temperature_c"):
        update_settings_file(path, {"gpu": {"max_temperature_c": 500}})
    with pytest.raises(ConfigError, match="unknown key"):
        update_settings_file(path, {"gpu": {"fan": 1}})
    assert path.read_bytes() == original


def test_change_is_refused_while_the_file_itself_is_invalid(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = b"[gpu]\nmax_temperature_c = 'hot'\n"
    path.write_bytes(original)
    with pytest.raises(ConfigError):
        update_settings_file(path, {"work": {"idle_threshold": "5m"}})
    assert path.read_bytes() == original


def test_write_back_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[work]\nidle_threshold = "10m"\n')
    path.chmod(0o640)
    update_settings_file(path, {"work": {"idle_threshold": "20m"}})
    assert path.stat().st_mode & 0o777 == 0o640


@given(st.integers(min_value=0, max_value=200_000))
def test_threshold_accepted_exactly_within_its_range(seconds: int) -> None:
    data = {"work": {"idle_threshold": f"{seconds}s"}}
    if 5 <= seconds <= 24 * 3600:
        assert validate_settings(data, source="t").work.idle_threshold == f"{seconds}s"
    else:
        with pytest.raises(ConfigError, match=r"work\.idle_threshold"):
            validate_settings(data, source="t")


def test_example_config_loads_and_sets_every_section() -> None:
    settings = load_settings(EXAMPLES / "config.toml")
    assert settings != Settings()
    text = (EXAMPLES / "config.toml").read_text()
    for section in Settings.model_fields:
        assert f"[{section}]" in text, f"examples/config.toml does not document [{section}]"


def test_readme_shows_the_example_config() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    example = (EXAMPLES / "config.toml").read_text()
    shown = readme.split("```toml\n", 1)[1].split("```", 1)[0]
    assert shown.strip() in example, "README's config example differs from examples/config.toml"
    assert load_settings(EXAMPLES / "config.toml") == validate_settings(tomllib.loads(shown), source="README")
