"""`make docs` (docs/generate.py) runs, and writes exactly the committed documents.

The other tests compare each document with what the code serves; this one keeps the generator itself working
(it had stopped at the marketplace's document, whose app reads its settings as it is built)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_the_generator_writes_the_committed_documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("docs_generate", DOCS / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    monkeypatch.setattr(generator, "DOCS", tmp_path)

    generator.main()

    written = sorted(path.name for path in tmp_path.iterdir())
    assert written == [
        "control-api.openapi.json",
        "job-spec.schema.json",
        "marketplace.openapi.json",
        "status.schema.json",
    ]
    for name in written:
        assert (tmp_path / name).read_text() == (DOCS / name).read_text(), f"docs/{name} is stale: run `make docs`"
