"""The published JSON Schema (``noetl schema``, ``/api/schema``) accepts every upstream fixture
and docs example and rejects the structural mistakes of the broken corpus (checked with the
``jsonschema`` package, the way editors use the schema)."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from noetl.dsl.schema import playbook_schema
from tests.dsl.test_broken_corpus import FILES as BROKEN_FILES
from tests.dsl.test_broken_corpus import expectation

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures").rglob("*.yaml")) + sorted(
    (ROOT / "tests" / "compat" / "fixtures").glob("*.yaml"))


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = playbook_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _docs_examples() -> list[tuple[str, str]]:
    from tests.docs.test_examples import DOC_FILES, extract

    return [(ex.id, ex.text) for doc in DOC_FILES for ex in extract(doc) if ex.marker != "invalid"]


def test_fixtures_are_enough() -> None:
    assert len(FIXTURES) >= 23


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_schema_accepts_upstream_fixture(path: Path) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [e.message for e in _validator().iter_errors(doc)]
    assert not errors, errors


def test_schema_accepts_every_docs_example() -> None:
    v = _validator()
    examples = _docs_examples()
    assert len(examples) > 20
    bad = {i: [e.message for e in v.iter_errors(yaml.safe_load(t))][:3] for i, t in examples
           if not v.is_valid(yaml.safe_load(t))}
    assert not bad


def _as_yaml(path: Path) -> object:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # not YAML text at all: no editor schema applies (the validator test covers it)


STRUCTURAL = [p for p in BROKEN_FILES if expectation(p)[2] and _as_yaml(p) is not None]


def test_enough_structural_cases() -> None:
    assert len(STRUCTURAL) >= 35


@pytest.mark.parametrize("path", STRUCTURAL, ids=[p.stem for p in STRUCTURAL])
def test_schema_rejects_structural_mistake(path: Path) -> None:
    assert not _validator().is_valid(_as_yaml(path)), f"{path.name}: the schema accepts it"


def test_cli_schema_prints_the_same_document() -> None:
    proc = subprocess.run([sys.executable, "-m", "noetl", "schema"], capture_output=True,
                          text=True, timeout=60, check=True)
    assert json.loads(proc.stdout) == playbook_schema()


def test_api_serves_the_same_document(sqlite_url: str, noetl_home: Path) -> None:
    from tests.api.conftest import start_server

    server = start_server(sqlite_url)
    try:
        with server.client() as c:
            r = c.get("/api/schema")
    finally:
        server.stop()
    assert r.status_code == 200, r.text
    assert r.json() == playbook_schema()
