"""Secrets a command needs (a requester's API key, a studio's admin token, an enrolment code), read so that
they stay out of the process list, which every local user can read, and out of the shell's history."""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from sparecycles.terminal import print_error, print_warning


class SecretInputError(Exception):
    """A secret was given in a way that cannot be used; the message says how to give it."""


@dataclass(frozen=True)
class SecretInput:
    """A secret a command needs, and the ways to give it that keep it out of the process list (which every local
    user can read) and the shell's history: an environment variable, a file only its owner can read, or a hidden
    prompt in a terminal. The old form on the command line still works for scripts, with a warning."""

    name: str  # as a sentence says it: "the requester's API key"
    prompt: str  # what the hidden prompt asks: "Requester API key"
    envvar: str
    file_option: str  # "--api-key-file"
    visible_form: str  # the old form, as the warning names it: "--api-key"

    def ways(self) -> str:
        return (
            f"set {self.envvar}, give {self.file_option} PATH (a file only you can read), "
            "or leave it out to be asked for it in a terminal"
        )

    def read(self, given: str | None, file: Path | None) -> str | None:
        """The secret from (first found) the command line, ``file``, the environment, or a hidden prompt when
        stdin is a terminal; None when there is none."""
        if given is not None and file is not None:
            raise SecretInputError(f"give {self.name} once: {self.visible_form} or {self.file_option}, not both")
        if given is not None:
            print_warning(
                f"{self.visible_form} puts {self.name} where other users of this machine can read it (the process "
                f"list), and in your shell's history; {self.ways()}"
            )
            return given.strip() or None
        if file is not None:
            return self._from_file(file)
        if os.environ.get(self.envvar, "").strip():
            return os.environ[self.envvar].strip()
        if sys.stdin.isatty():
            return str(typer.prompt(self.prompt, hide_input=True, err=True)).strip() or None
        return None

    def _from_file(self, path: Path) -> str:
        path = path.expanduser()
        try:
            mode = path.stat().st_mode
            if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretInputError(
                    f"{path} holds {self.name} and other users can read or change it (mode "
                    f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}` and try again"
                )
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SecretInputError(f"{self.file_option} {path} cannot be read ({exc.strerror or exc})") from None
        except UnicodeDecodeError:  # never echo what the file holds
            raise SecretInputError(f"{path} is not text: it should hold {self.name} alone") from None
        if not value:
            raise SecretInputError(f"{path} is empty: it should hold {self.name} alone")
        return value


def read_secret(secret: SecretInput, given: str | None, file: Path | None) -> str | None:
    """``secret.read``, a refusal ending the command with its message (exit status 2: an argument problem)."""
    try:
        return secret.read(given, file)
    except SecretInputError as exc:
        print_error(str(exc))
        raise typer.Exit(2) from None
