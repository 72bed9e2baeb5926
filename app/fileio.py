"""Small file helpers that never leave a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path


def atomic_write_text(path: Path, text: str, *, mode: int | None = None) -> None:
    """Replace ``path`` with ``text`` in one step, so a crash leaves the old or the new file.

    The file keeps its current permission bits unless ``mode`` is given; a new file gets ``mode``
    or 0600 (our files hold settings and credentials, so private is the safe default).

    A symlink is written through: its target is replaced and the link stays (a config.toml kept in a dotfiles
    repository must not be swapped for a copy that the repository no longer sees).
    """
    # realpath rather than Path.resolve: on a symlink loop it gives a path (an OSError, ELOOP, then says what is
    # wrong) instead of raising RuntimeError.
    path = Path(os.path.realpath(path))
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o600
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(descriptor, mode)
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read_number_map(path: Path) -> dict[str, float]:
    """A small state file holding ``{"name": number}``; {} when it does not exist.

    Raises ValueError when the file is damaged, so the caller can say what it does instead.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    try:
        return {str(key): float(value) for key, value in data.items()}
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not all values are numbers ({exc})") from None
