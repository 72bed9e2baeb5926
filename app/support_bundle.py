"""The support bundle (`sparecycles doctor --bundle FILE`): what a bug report needs, with secrets masked.

A zip of the doctor's report (JSON and text), versions (SpareCycles, Python, the OS, key packages), the
most recent logs and the settings file. Every member passes through :func:`mask_secrets` before it is
written: the running agent's API token, values of keys that name a secret, 0x-prefixed 64-hex private
keys, bearer tokens, credentials and API keys in URLs and BIP-39 recovery phrases. Key files, the agent's lock file
and the databases are never read.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from pathlib import Path

import sparecycles
from sparecycles.diagnostics import CheckResult
from sparecycles.logs import MASK, SecretMasker
from sparecycles.paths import AppPaths

DEFAULT_LOG_BYTES = 5 * 1024 * 1024
KEY_PACKAGES = (
    "pydantic",
    "fastapi",
    "uvicorn",
    "httpx",
    "typer",
    "docker",
    "nvidia-ml-py",
    "keyring",
    "eth-account",
    "web3",
    "sqlalchemy",
    "apscheduler",
    "pyside6-essentials",
    "platformdirs",
)

_SECRET_SETTING = re.compile(
    r"(?im)^(\s*[\"']?[\w.-]*(?:secret|token|password|passphrase|api[_-]?key|private[_-]?key|mnemonic|seed)"
    r"[\w.-]*[\"']?\s*=\s*).+$"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@")
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+")
# An RPC provider's API key as a path segment or query value (Infura's /v3/<32 hex>, Alchemy's /v2/<key>);
# UUIDs (job and lease ids) are kept.
_URL_KEY = re.compile(r"(?<=[/=])(?=[A-Za-z_-]*[0-9])(?=[0-9_-]*[A-Za-z])[A-Za-z0-9_-]{20,}(?=$|[/?&#])")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_WORD = re.compile(r"[a-z]+")
MNEMONIC_MIN_WORDS = 12


@cache
def _bip39_words() -> frozenset[str] | None:
    try:
        from eth_account.hdaccount.mnemonic import get_wordlist
    except ImportError:
        return None
    return frozenset(get_wordlist("english"))


def _mask_mnemonics(text: str) -> str:
    """Replace runs of 12 or more BIP-39 words (a recovery phrase, whatever separates them) with the mask."""
    words = _bip39_words()
    matches = list(_WORD.finditer(text))
    spans: list[tuple[int, int]] = []
    run: list[re.Match[str]] = []

    def close() -> None:
        if len(run) >= MNEMONIC_MIN_WORDS:
            spans.append((run[0].start(), run[-1].end()))
        run.clear()

    for match in matches:
        in_list = match.group() in words if words is not None else 3 <= len(match.group()) <= 8
        adjacent = not run or re.fullmatch(r"[\s,\"'\-]*", text[run[-1].end() : match.start()]) is not None
        if in_list and adjacent:
            run.append(match)
        else:
            close()
            if in_list:
                run.append(match)
    close()
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text


def _unless_uuid(match: re.Match[str]) -> str:
    return match.group() if _UUID.fullmatch(match.group()) else MASK


def mask_secrets(text: str, known: Iterable[str] = ()) -> str:
    """``text`` without the ``known`` secrets and without anything that looks like a secret."""
    masker = SecretMasker()
    for secret in known:
        masker.register(secret)
    text = _SECRET_SETTING.sub(lambda match: f'{match.group(1)}"{MASK}"', text)
    text = _URL_CREDENTIALS.sub(lambda match: f"{match.group(1)}{MASK}@", text)
    text = _URL.sub(lambda url: _URL_KEY.sub(_unless_uuid, url.group()), text)
    return _mask_mnemonics(masker.mask(text))


def _known_secrets(paths: AppPaths) -> list[str]:
    """Secrets this machine has that the text patterns might miss: the running agent's API token."""
    from sparecycles.control.endpoint import EndpointFileError, read_endpoint

    try:
        endpoint = read_endpoint(paths.agent_lock_file)
    except (EndpointFileError, OSError):
        return []
    return [endpoint.token] if endpoint is not None and endpoint.token else []


def versions() -> dict[str, object]:
    packages: dict[str, str | None] = {}
    for name in KEY_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "sparecycles": sparecycles.__version__,
        "python": sys.version,
        "frozen": bool(getattr(sys, "frozen", False)),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "os_release": _os_release(),
        "packages": packages,
    }


def _os_release() -> str | None:
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return None
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?$', text, re.MULTILINE)
    return match.group(1) if match else None


def report_text(results: Sequence[CheckResult]) -> str:
    lines = []
    for result in results:
        lines.append(f"[{result.outcome.value}] {result.name}: {result.detail}")
        if result.fix and result.outcome.value != "ok":
            lines.append(f"    fix: {result.fix}")
    return "\n".join(lines) + "\n"


def report_json(results: Sequence[CheckResult]) -> str:
    return json.dumps([r.__dict__ | {"outcome": r.outcome.value} for r in results], indent=2) + "\n"


def _recent_logs(log_dir: Path, budget: int) -> list[tuple[str, bytes]]:
    """The newest log files' ends, newest first, ``budget`` bytes in all (a rotated file's tail first)."""
    try:
        files = [p for p in log_dir.iterdir() if p.is_file() and ".log" in p.name]
    except OSError:
        return []
    files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    taken: list[tuple[str, bytes]] = []
    for path in files:
        if budget <= 0:
            break
        size = path.stat().st_size
        with path.open("rb") as handle:
            if size > budget:
                handle.seek(size - budget)
            data = handle.read(budget)
        budget -= len(data)
        taken.append((path.name, data))
    return taken


def write_bundle(
    destination: Path,
    paths: AppPaths,
    report: Sequence[CheckResult],
    *,
    max_log_bytes: int = DEFAULT_LOG_BYTES,
    now: datetime | None = None,
) -> list[str]:
    """Write the zip to ``destination``; returns its members' names."""
    known = _known_secrets(paths)
    members: list[tuple[str, str]] = [
        ("doctor.json", report_json(report)),
        ("doctor.txt", report_text(report)),
        ("versions.json", json.dumps(versions(), indent=2) + "\n"),
    ]
    try:
        config = paths.config_file.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        config = "# no settings file: all defaults\n"
    members.append(("config.toml", config))
    for name, data in _recent_logs(paths.log_dir, max_log_bytes):
        members.append((f"logs/{name}", data.decode("utf-8", errors="replace")))
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    members.append(("README.txt", f"SpareCycles support bundle, {stamp}. Secrets were masked as {MASK}.\n"))
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.partial")
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, text in members:
                archive.writestr(name, mask_secrets(text, known))
        os.chmod(temporary, 0o600)
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)
    return [name for name, _ in members]
