"""Log a source's failure once, not on every poll, and say when it answers again."""

from __future__ import annotations

import logging


class FailureLog:
    """The first failure is logged once: a WARNING after the source had worked, INFO if it never did
    (a source that does not exist here is not news); repeats are DEBUG; a recovery is one INFO."""

    def __init__(self, logger: logging.Logger, source: str) -> None:
        self._log = logger
        self._source = source
        self._failing = False
        self._worked = False

    @property
    def failing(self) -> bool:
        return self._failing

    def failed(self, message: str) -> None:
        if self._failing:
            self._log.debug("%s: %s", self._source, message)
            return
        self._failing = True
        self._log.log(logging.WARNING if self._worked else logging.INFO, "%s: %s", self._source, message)

    def recovered(self) -> None:
        self._worked = True
        if self._failing:
            self._failing = False
            self._log.info("%s: answering again", self._source)
