"""The PyInstaller bundle's agent, headless, earning on the private marketplace: the same end-to-end job
as the installed command's (tests/jobs/test_market_end_to_end.py), with every command being the bundle's
executable. This needs what a bundle must carry beyond imports: the marketplace's and the ledger's Alembic
migrations as files, uvicorn's protocol modules, SQLAlchemy's SQLite dialect, the Docker SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.conftest import LocalRegistry
from tests.jobs.test_market_end_to_end import run_the_example_job_on_the_private_marketplace

pytestmark = pytest.mark.docker


def test_the_bundled_agent_runs_the_example_job_on_the_private_marketplace(
    tmp_path: Path, bundle: str, local_registry: LocalRegistry, busybox_image: str, docker_exec_works: None
) -> None:
    run_the_example_job_on_the_private_marketplace(tmp_path, local_registry, busybox_image, cli=bundle)
