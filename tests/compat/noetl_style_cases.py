"""What each NoETL-style playbook (tests/compat/noetl_style) is meant to do, as checks that run
the same way embedded and through a server and remote workers (``Target``).

Every check runs its playbook and asserts the exact data its header comment promises: step
results, the rows in PostgreSQL, and the requests the stand-in API received.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tests.compat.conftest import forecast
from tests.compat.noetl_style_api import COMMITS, REPOS, USERS, SuiteApi

SUITE = Path(__file__).resolve().parent / "noetl_style"
CHILDREN = ("user_scorer",)  # registered before the others
ENV = {"NOETL_TEMPLATE_ENV": "NS_TEAM", "NS_TEAM": "data-platform", "NS_DB_HOST": "db.internal"}


@dataclass
class Run:
    desc: dict[str, Any]
    events: list[dict[str, Any]]

    @property
    def eid(self) -> str:
        return str(self.desc["execution_id"])

    def ok(self) -> Run:
        assert self.desc["status"] == "COMPLETED", self.desc.get("error")
        return self

    def result(self, step: str) -> Any:
        s = self.desc["steps"][step]
        assert s["status"] == "COMPLETED", (step, s)
        return s["result"]

    def status(self, step: str) -> str:
        return str(self.desc["steps"][step]["status"])


class Target(Protocol):
    api: SuiteApi

    def run(self, name: str, args: dict[str, Any] | None = None) -> Run: ...

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]: ...


def playbooks() -> list[Path]:
    """Children first, then the rest by name."""
    files = sorted(SUITE.glob("*.yaml"))
    return sorted(files, key=lambda p: (p.stem not in CHILDREN, p.stem))


def peak(lat: float, lon: float) -> float:
    return max(forecast({"latitude": str(lat), "longitude": str(lon)})["hourly"]["temperature_2m"])


def forecast_queries(t: Target, since: int) -> list[dict[str, str]]:
    return [r["query"] for r in t.api.matching("/v1/forecast")[since:]]


def weather_forecast(t: Target) -> None:
    n = len(t.api.matching("/v1/forecast"))
    r = t.run("weather_forecast").ok()
    top = peak(51.51, -0.13)
    assert r.result("evaluate_weather") == {"city": "London", "max_temp": top, "alert": True,
                                            "hours": 24}
    assert forecast_queries(t, n) == [{"latitude": "51.51", "longitude": "-0.13",
                                       "hourly": "temperature_2m", "forecast_days": "1"}]
    assert t.api.matching("/v1/forecast")[-1]["headers"]["user-agent"] == \
        "NoETL Weather Example/1.0"
    assert t.query("SELECT city, max_temp, alert FROM public.ns_weather_alerts WHERE id = %s",
                   (r.eid,)) == [("London", top, True)]


def weather_cities_loop(t: Target) -> None:
    n = len(t.api.matching("/v1/forecast"))
    r = t.run("weather_cities_loop").ok()
    cities = {"London": (51.51, -0.13), "Madrid": (40.42, -3.7), "Oslo": (59.91, 10.75)}
    assert sorted((q["latitude"], q["longitude"]) for q in forecast_queries(t, n)) == sorted(
        (str(a), str(b)) for a, b in cities.values())
    assert r.result("summarize") == {"fetched": 3, "warmest": "Oslo", "peak": peak(59.91, 10.75)}
    assert t.query("SELECT id, city, first_temp FROM public.ns_city_forecast "
                   "WHERE execution_id = %s ORDER BY city", (r.eid,)) == [
        (f"{r.eid}:{c}", c, round(lat / 10, 1)) for c, (lat, _) in sorted(cities.items())]


def github_repo_metrics(t: Target) -> None:
    n = len(t.api.matching("/repos/"))
    r = t.run("github_repo_metrics").ok()
    names = ["microsoft/vscode", "psf/requests", "noetl/noetl"]
    reqs = t.api.matching("/repos/")[n:]
    assert [q["path"] for q in reqs] == [f"/repos/{x}" for x in names]  # sequential, in order
    assert {q["headers"]["accept"] for q in reqs} == {"application/vnd.github+json"}
    want = [(x, REPOS[x][0], REPOS[x][1], REPOS[x][0] + 2 * REPOS[x][1]) for x in names]
    assert r.result("compute_metrics")["repos"] == [
        {"repo": a, "stars": b, "forks": c, "score": d} for a, b, c, d in want]
    assert sorted(t.query("SELECT repo, stars, forks, score FROM public.ns_github_metrics "
                          "WHERE execution_id = %s", (r.eid,))) == sorted(want)
    assert r.result("end") == {"top": "microsoft/vscode", "repositories": 3}


def github_commits_duckdb(t: Target) -> None:
    n = len(t.api.matching("/repos/noetl/noetl/commits"))
    r = t.run("github_commits_duckdb").ok()
    reqs = t.api.matching("/repos/noetl/noetl/commits")[n:]
    assert [q["query"] for q in reqs] == [{"per_page": "6"}]
    counts = Counter(c["commit"]["author"]["name"] for c in COMMITS[:6])
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    assert r.result("commits_by_author")["command_2"]["rows"] == [
        {"author": a, "commits": c} for a, c in want]


def http_duckdb_postgres(t: Target) -> None:
    r = t.run("http_duckdb_postgres").ok()
    by_city: dict[str, list[str]] = {}
    for u in USERS:
        by_city.setdefault(u["address"]["city"], []).append(u["username"])
    want = [(c, len(v), ",".join(sorted(v))) for c, v in sorted(by_city.items())]
    assert [tuple(x.values()) for x in r.result("aggregate_duckdb")["command_0"]["rows"]] == want
    assert t.query("SELECT city, users, usernames FROM public.ns_users_by_city "
                   "WHERE execution_id = %s ORDER BY city", (r.eid,)) == want
    assert r.result("write_postgres")["command_1"]["rows"] == [{"cities": len(want)}]


def subplaybook_loop_data(t: Target) -> None:
    r = t.run("subplaybook_loop_data").ok()
    assert r.result("score_users") == [
        {"name": "Alice", "score": 52.0, "level": "Senior"},
        {"name": "Bob", "score": 59.0, "level": "Senior"},
        {"name": "Chen", "score": 24.0, "level": "Junior"}]
    assert r.result("rollup") == {"names": ["Alice", "Bob", "Chen"], "seniors": 2,
                                  "scores": [52.0, 59.0, 24.0]}
    assert len(r.desc["children"]) == 3


def workbook_chain(t: Target) -> None:
    n = len(t.api.matching("/v1/forecast"))
    r = t.run("workbook_chain").ok()
    assert forecast_queries(t, n) == [{"latitude": "41.9", "longitude": "12.5",
                                       "hourly": "temperature_2m"}]
    assert r.result("peak") == {"peak": peak(41.9, 12.5), "hours": 24}
    assert r.result("report") == f"Rome: peak {peak(41.9, 12.5)} C over 24 h"


def iterator_loop_save(t: Target) -> None:
    r = t.run("iterator_loop_save").ok()
    assert r.result("price_orders") == [7.0, 10.0, 5.0]
    assert t.query("SELECT orders, grand_total, errors FROM public.ns_order_batches "
                   "WHERE execution_id = %s", (r.eid,)) == [(3, 22.0, 0)]


def save_end_step(t: Target) -> None:
    r = t.run("save_end_step").ok()
    assert t.query("SELECT readings, peak, mean FROM public.ns_daily_summary WHERE id = %s",
                   (r.eid,)) == [(4, 12, 7.0)]
    saves = [e["meta"]["save"] for e in r.events if e["node_name"] == "end"
             and e["event_type"] == "action_completed" and (e.get("meta") or {}).get("save")]
    assert [s["data"] for s in saves] == [{"message": "summary of 4 readings stored", "peak": 12}]
    assert r.status("store_summary") == "COMPLETED"


def b64_commands(t: Target) -> None:
    r = t.run("b64_commands").ok()
    assert r.result("pg_script")["command_2"]["rows"] == [{"kind": "refund", "amount": 21}]
    assert t.query("SELECT kind, amount FROM public.ns_b64_events WHERE execution_id = %s",
                   (r.eid,)) == [("refund", 21)]
    assert r.result("duck_query")["command_0"]["rows"] == [{"kind": "refund", "doubled": 42}]
    assert r.result("label") == {"label": "REFUND"}


def workload_env_job(t: Target) -> None:
    r = t.run("workload_env_job").ok()
    got = r.result("describe_job")
    job_id = got.pop("job_id")
    assert str(uuid.UUID(job_id)) == job_id
    assert got == {"run_ref": f"run-{r.eid}", "team": "data-platform", "db_host": "localhost"}
    assert t.query("SELECT job_id, execution_id, team FROM public.ns_jobs WHERE job_id = %s",
                   (job_id,)) == [(job_id, r.eid, "data-platform")]
    second = t.run("workload_env_job").ok().result("describe_job")["job_id"]
    assert second != job_id  # one job id per execution


def python_context(t: Target) -> None:
    r = t.run("python_context").ok()
    assert r.result("report") == {"warehouse": "north", "items": 3, "value": 17.5}


def edge_args_routing(t: Target) -> None:
    r = t.run("edge_args_routing").ok()
    assert r.result("lookup") == {"city": "Oslo", "units": "metric", "lat": 59.91}
    assert r.result("announce") == "Oslo at 59.91 (metric)"


def http_retry(t: Target) -> None:
    r = t.run("http_retry", {"base_url": t.api.url}).ok()
    assert r.result("check") == {"status": 200, "key": r.eid, "attempt": 3}
    assert r.desc["steps"]["fetch_flaky"]["attempts"] == 3
    assert [q["query"] for q in t.api.matching(f"/flaky/{r.eid}")] == [{"fail": "2"}] * 3


def http_retry_stop(t: Target) -> None:
    n = len(t.api.matching("/status/404"))
    r = t.run("http_retry_stop", {"base_url": t.api.url})
    assert r.desc["status"] == "FAILED"
    assert r.desc["error"]["step"] == "fetch_missing"
    assert "404" in r.desc["error"]["message"], r.desc["error"]
    assert r.desc["steps"]["fetch_missing"]["attempts"] == 1
    assert len(t.api.matching("/status/404")) == n + 1
    assert r.status("after") == "SKIPPED"


def conditional_routing(t: Target) -> None:
    hot = t.run("conditional_routing").ok()
    assert hot.result("heat_alert") == {"route": "heat", "station": "ST-7", "level": "high",
                                        "reading": 31}
    assert (hot.status("frost_alert"), hot.status("log_normal")) == ("SKIPPED", "SKIPPED")
    mild = t.run("conditional_routing", {"temperature": 12}).ok()
    assert mild.result("log_normal") == {"route": "normal", "reading": 12}
    assert (mild.status("heat_alert"), mild.status("frost_alert")) == ("SKIPPED", "SKIPPED")


def sql_args_bare_names(t: Target) -> None:
    r = t.run("sql_args_bare_names").ok()
    assert r.result("big_sales")["command_0"]["rows"] == [{"id": "s2", "amount": 75},
                                                          {"id": "s3", "amount": 120}]
    assert r.result("label")["command_0"]["rows"] == [{"label": "top 2", "n": 2}]


def save_statement_params(t: Target) -> None:
    r = t.run("save_statement_params").ok()
    assert t.query("SELECT k, v FROM public.ns_kv WHERE k LIKE %s ORDER BY k",
                   (f"{r.eid}:%",)) == [(f"{r.eid}:a", "alpha"), (f"{r.eid}:b", "beta")]


def iterator_task_data(t: Target) -> None:
    r = t.run("iterator_task_data").ok()
    assert r.result("per_sensor") == ["s1=4.5", "s3=7.0"]


def http_post_echo(t: Target) -> None:
    n = len(t.api.matching("/echo/"))
    r = t.run("http_post_echo", {"base_url": t.api.url}).ok()
    assert len(t.api.matching("/echo/")) == n + 1
    assert r.result("confirm") == {"method": "POST", "path": "/echo/orders",
                                   "query": {"source": "noetl"}, "tenant": "acme",
                                   "body": {"order": "A-17", "lines": 3}}


def workload_bare_names(t: Target) -> None:
    n = len(t.api.matching("/repos/psf/requests"))
    r = t.run("workload_bare_names").ok()
    assert len(t.api.matching("/repos/psf/requests")) == n + 1
    assert r.result("stars") == {"repo": "psf/requests", "stars": REPOS["psf/requests"][0]}
    assert t.query("SELECT repo, stars FROM public.ns_repo_stars WHERE execution_id = %s",
                   (r.eid,)) == [("psf/requests", REPOS["psf/requests"][0])]


CASES: dict[str, Callable[[Target], None]] = {f.__name__: f for f in (
    weather_forecast, weather_cities_loop, github_repo_metrics, github_commits_duckdb,
    http_duckdb_postgres, subplaybook_loop_data, workbook_chain, iterator_loop_save,
    save_end_step, b64_commands, workload_env_job, python_context, edge_args_routing,
    http_retry, http_retry_stop, conditional_routing, sql_args_bare_names,
    save_statement_params, iterator_task_data, http_post_echo, workload_bare_names)}
