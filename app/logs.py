"""Logging set-up shared by the agent and the GUI: a rotating file and a filter that masks secrets.

Secrets (the control-API token, keys, mnemonics) are registered with :class:`SecretMasker` the
moment they exist; the filter replaces them in every record before any handler writes it,
including exception text. Patterns that look like bearer tokens or raw private keys are masked
too, as a second line of defence for secrets nobody registered.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import threading
import traceback
from pathlib import Path

MASK = "***"
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"(?i)((?:token|api[_-]?key|secret|password)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]{8,}"),
    re.compile(r"()(?<!sha256:)\b(?:0x)?[0-9a-fA-F]{64}\b"),  # raw private keys; image digests stay
)
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class SecretMasker:
    """Knows the secrets of this process and removes them from text."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._lock = threading.Lock()

    def register(self, secret: str) -> None:
        if len(secret) >= 4:
            with self._lock:
                self._secrets.add(secret)

    def mask(self, text: str) -> str:
        with self._lock:
            secrets = sorted(self._secrets, key=len, reverse=True)
        for secret in secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda match: match.group(1) + MASK, text)
        return text


class SecretMaskingFilter(logging.Filter):
    """Rewrites each record so that no handler ever sees a secret."""

    def __init__(self, masker: SecretMasker) -> None:
        super().__init__()
        self._masker = masker

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format: keep the raw text rather than lose the record
            message = f"{record.msg} {record.args}"
        record.msg = self._masker.mask(message)
        record.args = None
        if record.exc_info:
            record.exc_text = self._masker.mask("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self._masker.mask(record.stack_info)
        return True


def configure_logging(
    masker: SecretMasker,
    *,
    log_file: Path | None,
    level: str = "info",
    console: bool = False,
) -> None:
    """Configure the root logger once per process: rotating file, optional console, masking."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handlers.append(
            logging.handlers.RotatingFileHandler(log_file, maxBytes=5_000_000, backupCount=3, encoding="utf-8")
        )
    if console:
        handlers.append(logging.StreamHandler())
    secret_filter = SecretMaskingFilter(masker)
    for handler in handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        handler.addFilter(secret_filter)
        root.addHandler(handler)
    set_log_level(level)
    # httpx logs every request and APScheduler every job run at INFO; the agent's own log says what matters.
    for chatty in ("httpx", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def set_log_level(level: str) -> None:
    logging.getLogger().setLevel(level.upper())
