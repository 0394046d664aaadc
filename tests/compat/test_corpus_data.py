"""NoETL corpus: HTTP -> PostgreSQL transfer and the HTTP -> DuckDB -> PostgreSQL pipeline
(jsonplaceholder.typicode.com and api.open-meteo.com are the local ``Api``)."""

from __future__ import annotations

import json

import pytest

from tests.compat.conftest import Compat, events_of, forecast
from tests.tools.conftest import POSTS

pytestmark = pytest.mark.postgres
CITIES = {"London": (51.51, -0.13), "Paris": (48.85, 2.35), "Berlin": (52.52, 13.41)}
PAYLOAD = {"pg_auth": "pg_local"}  # tests/fixtures/payloads upstream: the workload refers to it


def duckdb_postgres_extension() -> str | None:
    """None when DuckDB's postgres extension loads here (never downloading it), else why not."""
    from noetl.tools.duckdb import connect

    conn = connect(":memory:")
    try:
        conn.execute("LOAD postgres")
        return None
    except Exception as exc:
        return str(exc).splitlines()[0]
    finally:
        conn.close()


def test_http_to_postgres_transfer(compat: Compat) -> None:
    compat.api.clear()
    desc, _ = compat.run("data_transfer/http_to_postgres_transfer.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert compat.api.paths() == ["/posts"]
    assert desc["steps"]["transfer_http_to_pg"]["result"]["rows_transferred"] == len(POSTS)
    assert desc["steps"]["show_count"]["result"]["command_0"]["rows"] == [
        {"records": len(POSTS)}]
    rows = compat.query("SELECT post_id, user_id, title, body FROM public.http_posts "
                        "ORDER BY post_id")
    assert rows == [(p["id"], p["userId"], p["title"], p["body"]) for p in POSTS]
    # DROP TABLE + CREATE: a second run replaces, it does not append
    desc, _ = compat.run("data_transfer/http_to_postgres_transfer.yaml")
    assert desc["status"] == "COMPLETED", desc["error"]
    assert compat.query("SELECT count(*) FROM public.http_posts") == [(len(POSTS),)]


def check_http_rows(compat: Compat, eid: str) -> None:
    rows = compat.query("SELECT id, iter_index, city, url, elapsed, payload "
                        "FROM public.weather_http_raw WHERE execution_id = %s ORDER BY iter_index",
                        (eid,))
    assert [r[2] for r in rows] == list(CITIES)
    for i, (key, index, city, url, elapsed, payload) in enumerate(rows):
        assert index == i and key == f"{eid}:{city}:{i}"
        assert url.startswith(compat.api.url + "/v1/forecast?") and elapsed >= 0
        lat, lon = CITIES[city]
        # the step args became the query string, and the response body was saved as JSON text
        assert json.loads(payload)["data"] == forecast({"latitude": str(lat),
                                                        "longitude": str(lon)})


def test_http_duckdb_postgres_without_gcs(compat: Compat) -> None:
    """The offline copy: the HTTP loop and its per-item saves run; the DuckDB step needs
    DuckDB's postgres extension for ATTACH. Without it (no network to install it), that step
    fails naming the extension, and nothing after it runs."""
    compat.api.clear()
    desc, events = compat.run("copy:http_duckdb_postgres_offline.yaml", args=PAYLOAD)
    eid = str(desc["execution_id"])
    queries = [r["query"] for r in compat.api.requests if r["path"] == "/v1/forecast"]
    assert sorted((q["latitude"], q["longitude"]) for q in queries) == sorted(
        (str(lat), str(lon)) for lat, lon in CITIES.values())
    assert all(q["hourly"] == "temperature_2m" and q["forecast_days"] == "1" for q in queries)
    ua = {r["headers"]["user-agent"] for r in compat.api.requests}
    assert ua == {"NoETL City HTTP -> PG Demo/1.0"}
    assert desc["steps"]["http_loop"]["status"] == "COMPLETED"
    check_http_rows(compat, eid)
    missing = duckdb_postgres_extension()
    if missing is None:  # the extension is installed: the whole pipeline completes
        assert desc["status"] == "COMPLETED", desc["error"]
        agg = desc["steps"]["aggregate_with_duckdb"]["result"]
        last = agg[max(k for k in agg if k.startswith("command_"))]
        assert last["rows"] == [{"city": c, "rows_per_city": 1} for c in sorted(CITIES)]
        assert compat.query("SELECT pg_rows_saved FROM public.weather_pipeline_metrics "
                            "WHERE execution_id = %s", (eid,)) == [(3,)]
        return
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "aggregate_with_duckdb"
    msg = desc["error"]["message"]
    assert msg.startswith("auth alias 'pg_db': cannot attach the postgres database "
                          "(DuckDB postgres extension needed)"), msg
    assert missing in msg
    assert desc["steps"]["aggregate_with_duckdb"]["attempts"] == 1
    assert desc["steps"]["ensure_metrics_table"]["status"] == "SKIPPED"
    assert desc["steps"]["end"]["status"] == "SKIPPED"
    assert not events_of(events, "ensure_metrics_table", "action_started")


def test_http_duckdb_postgres_unchanged_needs_gcs_credential(compat: Compat) -> None:
    """The unchanged fixture gets as far as its DuckDB step, which names the GCS credential it
    lacks (auth is resolved before any SQL runs, so its INSTALL statements never execute)."""
    desc, _ = compat.run("http_duckdb_postgres/http_duckdb_postgres.yaml", args=PAYLOAD)
    assert desc["status"] == "FAILED"
    assert desc["error"]["step"] == "aggregate_with_duckdb"
    assert "gcs_hmac_local" in desc["error"]["message"], desc["error"]
    check_http_rows(compat, str(desc["execution_id"]))
