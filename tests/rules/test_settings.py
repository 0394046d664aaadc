"""One settings object (noetl.settings.Settings), built from the environment by a composition
root and passed down: no other module reads a NOETL_* variable, and none does at import."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from noetl.settings import Settings, SettingsError

SRC = Path(__file__).resolve().parents[2] / "src" / "noetl"


def test_from_env_reads_every_variable() -> None:
    s = Settings.from_env({
        "NOETL_HOME": "/h", "NOETL_STORE_URL": "sqlite:///x.db", "NOETL_LEASE_SECONDS": "2.5",
        "NOETL_MAX_LEASE_EXPIRIES": "7", "NOETL_PG_POOL_SIZE": "3", "NOETL_NODE_ID": "12",
        "NOETL_API_THREADS": "40", "NOETL_API_TOKEN": "t", "NOETL_ENCRYPTION_KEY": "k",
        "NOETL_SERVER_URL": "http://s", "NOETL_WORKER_ID": "w", "NOETL_DATA_DIR": "/d",
        "NOETL_TEMPLATE_TIMEOUT": "9", "NOETL_TEMPLATE_ENV": " A, B ,,", "NOETL_HTTP_REWRITE":
        "http://a=http://b", "NOETL_DUCKDB_AUTOINSTALL": "yes", "NOETL_CLI_MINIMAL": "1"})
    assert s == Settings(
        home="/h", store_url="sqlite:///x.db", lease_seconds=2.5, max_lease_expiries=7,
        pg_pool_size=3, node_id=12, api_threads=40, api_token="t", encryption_key="k",
        server_url="http://s", worker_id="w", data_dir="/d", template_timeout=9.0,
        template_env=("A", "B"), http_rewrite="http://a=http://b", duckdb_autoinstall=True,
        cli_minimal=True)
    assert s.default_store_url() == "sqlite:///x.db"


def test_unset_and_empty_variables_keep_the_defaults(tmp_path: Path) -> None:
    s = Settings.from_env({"NOETL_LEASE_SECONDS": "", "NOETL_API_TOKEN": "",
                           "NOETL_HOME": str(tmp_path)})
    assert s == Settings(home=str(tmp_path))
    assert s.default_store_url() == f"sqlite:///{tmp_path / 'noetl.db'}"
    assert Settings.from_env({}) == Settings()


@pytest.mark.parametrize("name", ["NOETL_LEASE_SECONDS", "NOETL_MAX_LEASE_EXPIRIES",
                                  "NOETL_NODE_ID", "NOETL_TEMPLATE_TIMEOUT"])
def test_a_bad_value_names_its_variable(name: str) -> None:
    with pytest.raises(SettingsError, match=f"{name}='five' is not"):
        Settings.from_env({name: "five"})


def _noetl_reads(source: str) -> list[int]:
    """Lines that read a NOETL_* variable: ``environ.get(..)``, ``getenv(..)``,
    ``environ[..]``, ``.. in environ``."""
    def noetl(node: ast.AST) -> bool:
        return isinstance(node, ast.Constant) and str(node.value).startswith("NOETL_")

    hits = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and node.args and noetl(node.args[0]):
            hit = ast.unparse(node.func).endswith(("environ.get", "getenv"))
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            hit = noetl(node.slice) and ast.unparse(node.value).endswith("environ")
        elif isinstance(node, ast.Compare) and isinstance(node.ops[0], ast.In | ast.NotIn):
            hit = noetl(node.left) and ast.unparse(node.comparators[0]).endswith("environ")
        else:
            hit = False
        if hit:
            hits.append(node.lineno)  # type: ignore[attr-defined]
    return hits


def test_the_scan_sees_every_kind_of_read() -> None:
    assert _noetl_reads("import os\na = os.environ.get('NOETL_A')\nb = os.getenv('NOETL_B')\n"
                        "c = os.environ['NOETL_C']\nd = 'NOETL_D' in os.environ\n"
                        "os.environ['NOETL_E'] = 'written, not read'\n"
                        "f = os.environ.get('HOME')\n") == [2, 3, 4, 5]


def test_only_the_settings_module_reads_noetl_variables() -> None:
    found = [f"{p.relative_to(SRC)}:{n}" for p in sorted(SRC.rglob("*.py"))
             if p.name != "settings.py" for n in _noetl_reads(p.read_text())]
    assert not found, f"NOETL_* read outside noetl/settings.py: {found}"


def test_no_module_reads_the_environment_at_import() -> None:
    """Every module imports under NOETL_* values that would not parse; the settings refuse
    them once built."""
    code = (
        "import importlib, pkgutil, noetl\n"
        "mods = [m.name for m in pkgutil.walk_packages(noetl.__path__, 'noetl.')\n"
        "        if m.name not in ('noetl.__main__',)]\n"
        "for m in mods:\n"
        "    importlib.import_module(m)\n"
        "from noetl.settings import Settings, SettingsError\n"
        "try:\n"
        "    Settings.from_env()\n"
        "except SettingsError as e:\n"
        "    print('refused:', e)\n"
        "print(len(mods))\n")
    env = {"PATH": "/usr/bin:/bin", "NOETL_LEASE_SECONDS": "x", "NOETL_MAX_LEASE_EXPIRIES": "x",
           "NOETL_API_THREADS": "x", "NOETL_TEMPLATE_TIMEOUT": "x", "NOETL_NODE_ID": "x",
           "NOETL_PG_POOL_SIZE": "x", "NOETL_CLI_MINIMAL": "1"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "refused: NOETL_LEASE_SECONDS='x' is not a number" in proc.stdout
    assert int(proc.stdout.split()[-1]) > 60  # every module was imported
