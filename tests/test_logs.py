"""Secrets never reach a log handler."""

from __future__ import annotations

import logging
from pathlib import Path

from sparecycles.logs import SecretMasker, configure_logging


def test_registered_secret_is_masked_in_messages_arguments_and_tracebacks(tmp_path: Path) -> None:
    masker = SecretMasker()
    secret = "s3cr3t-token-value-0123456789"
    masker.register(secret)
    log_file = tmp_path / "agent.log"
    configure_logging(masker, log_file=log_file, level="debug")
    log = logging.getLogger("test.masking")
    log.info("plain %s", secret)
    log.info(f"formatted {secret}")
    try:
        raise ValueError(f"failed with {secret}")
    except ValueError:
        log.exception("boom")
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = log_file.read_text()
    assert "plain ***" in text
    assert "formatted ***" in text
    assert "ValueError: failed with ***" in text
    assert secret not in text


def test_unregistered_secrets_that_look_like_keys_or_bearer_tokens_are_masked() -> None:
    masker = SecretMasker()
    private_key = "0x" + "ab" * 32
    assert private_key not in masker.mask(f"key={private_key}")
    assert masker.mask("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer ***"
    assert masker.mask("api_key=abcdefghijklmnop&x=1") == "api_key=***&x=1"


def test_image_digests_stay_readable() -> None:
    digest = "sha256:" + "cd" * 32
    assert SecretMasker().mask(f"pulled busybox@{digest}") == f"pulled busybox@{digest}"
