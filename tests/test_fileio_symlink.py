"""Saving through a symlink updates the link's target and keeps the link: a config.toml kept in a dotfiles
repository and linked into place must not be swapped for a copy the repository no longer sees."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sparecycles.config import update_settings_file
from sparecycles.fileio import atomic_write_text


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path]:
    """(the link, its target) in different folders, the link relative as `ln -s` makes them."""
    dotfiles = tmp_path / "dotfiles"
    config = tmp_path / "config" / "sparecycles"
    dotfiles.mkdir()
    config.mkdir(parents=True)
    target = dotfiles / "config.toml"
    target.write_text("[gpu]\nmax_temperature_c = 80\n")
    target.chmod(0o640)
    link = config / "config.toml"
    link.symlink_to(os.path.relpath(target, config))
    return link, target


def test_writing_through_a_symlink_updates_its_target(linked: tuple[Path, Path]) -> None:
    link, target = linked
    atomic_write_text(link, "new\n")
    assert link.is_symlink()
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the target's permission bits are kept
    assert sorted(path.name for path in target.parent.iterdir()) == ["config.toml"]  # no temporary left
    assert sorted(path.name for path in link.parent.iterdir()) == ["config.toml"]


def test_saving_settings_through_a_symlinked_config_keeps_the_link(linked: tuple[Path, Path]) -> None:
    link, target = linked
    settings = update_settings_file(link, {"gpu": {"max_temperature_c": 75}})
    assert settings.gpu.max_temperature_c == 75
    assert link.is_symlink()
    assert "max_temperature_c = 75" in target.read_text()


def test_a_link_to_a_missing_file_creates_the_target_privately(tmp_path: Path) -> None:
    link = tmp_path / "state.json"
    link.symlink_to(tmp_path / "real.json")
    atomic_write_text(link, "{}\n")
    assert link.is_symlink()
    assert (tmp_path / "real.json").read_text() == "{}\n"
    assert stat.S_IMODE((tmp_path / "real.json").stat().st_mode) == 0o600


def test_a_symlink_loop_is_an_os_error_and_leaves_the_links(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError, match="symbolic links"):
        atomic_write_text(tmp_path / "a", "x")
    assert (tmp_path / "a").is_symlink()
    assert (tmp_path / "b").is_symlink()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a", "b"]


def test_a_plain_file_is_still_replaced_in_place(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("old\n")
    path.chmod(0o644)
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert not path.is_symlink()
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
