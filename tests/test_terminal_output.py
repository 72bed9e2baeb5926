"""The command line prints what users and marketplaces wrote exactly as written: square brackets in a config
key, a value or an argument are neither swallowed as styling nor a crash (rich markup is off, app/terminal.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparecycles.terminal import print_error, styled
from tests.conftest import run_cli

pytestmark = pytest.mark.timeout(60)


def test_a_bracketed_argument_is_quoted_back_not_read_as_markup(home: Path) -> None:
    result = run_cli(home, "snooze", "[/x]")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "Error:" in result.stderr
    assert "[/x]" in result.stderr


def test_a_mistyped_key_names_its_section_in_brackets(home: Path) -> None:
    config = home / "config" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[general]\nlog_levle = "info"\n')
    result = run_cli(home, "agent", "--foreground", timeout=30)
    assert result.returncode == 2
    assert "log_levle" in result.stderr
    assert "[general]" in result.stderr


def test_styled_words_keep_the_text_between_them_literal(capsys: pytest.CaptureFixture[str]) -> None:
    print_error("allowed keys in [general]: log_level; [b]bold[/b] stays as written")
    assert "Error: allowed keys in [general]: log_level; [b]bold[/b] stays as written" in capsys.readouterr().err
    assert styled("job-1: ", ("[red]queued", "bold"), " — [/]").plain == "job-1: [red]queued — [/]"
