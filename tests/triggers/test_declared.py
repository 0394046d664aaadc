"""``schedule:``, ``hooks:`` and ``notify:`` in a playbook: validated with lines and hints, and
registering a version replaces what the path declared before."""

from __future__ import annotations

import textwrap

import pytest

from noetl.dsl import parse_playbook
from noetl.engine.core import Engine
from noetl.errors import Conflict, PlaybookError
from noetl.store import open_store
from noetl.store.trigger_rows import HookRow

HEAD = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: nightly}
"""
FLOW = """\
workflow:
  - step: start
    next: end
  - step: end
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(textwrap.dedent(text), "p.yaml")
    return [f"{p.where} (line {p.line}): {p.message}" for p in info.value.problems]


def test_valid_triggers_give_no_warning() -> None:
    pb = parse_playbook(HEAD + """\
schedule:
  - cron: "0 2 * * *"
    timezone: Europe/Berlin
    args: {day: yesterday}
    catchup: one
    overlap: cancel_previous
  - interval: 15m
    enabled: false
hooks:
  - name: on-push
    credential: push_secret
    auth: bearer
    args: {repo: "{{ body.repository }}"}
notify:
  - url: https://hooks.example.com/noetl
    format: slack
    status: [failed, cancelled]
""" + FLOW, "p.yaml")
    assert not pb.warnings


def test_bad_triggers_are_errors_with_lines_and_hints() -> None:
    got = _problems(HEAD + """\
schedule:
  - cron: "0 2 * *"
  - interval: 5m
    timezon: UTC
    overlap: cancel
notify:
  - format: json
    status: failed
hooks:
  - name: "has space"
    credential: x
""" + FLOW)
    assert got == [
        "schedule[0] → cron (line 5): cron '0 2 * *': needs five fields (minute hour "
        "day-of-month month day-of-week) or one of @annually, @daily, @hourly, @midnight, "
        "@monthly, @weekly, @yearly",
        "schedule[1] (line 7): unknown key 'timezon' (did you mean 'timezone'?)",
        "schedule[1] → overlap (line 8): must be one of skip, allow, cancel_previous, got "
        "'cancel'",
        "notify[0] (line 10): needs 'url' or 'credential' (a credential holding the url)",
        "hooks[0] → name (line 13): needs a name of letters, digits, '.', '_' or '-' (it is "
        "the URL: /api/hooks/NAME), got 'has space'",
    ]


def test_misspelt_top_level_key_warns_with_a_hint() -> None:
    pb = parse_playbook(HEAD + "schedules:\n  - interval: 1m\n" + FLOW, "p.yaml")
    assert pb.warnings == ("p.yaml: schedules (line 4): unknown top-level key (ignored) "
                           "(did you mean 'schedule'?)",)


def _pb(schedule: str, hooks: str = "") -> str:
    return HEAD + schedule + hooks + FLOW


def test_registering_a_version_replaces_its_schedules_and_hooks(sqlite_url: str) -> None:
    eng = Engine(open_store(sqlite_url))
    try:
        eng.register(_pb("schedule:\n  - interval: 1h\n  - cron: '0 2 * * *'\n",
                         "hooks:\n  - {name: h1, credential: c}\n"))
        with eng.store.read() as tx:
            first = {(s.cron, s.interval): s for s in tx.list_schedules("nightly")}
            assert {h.name for h in tx.list_hooks()} == {"h1"}
        assert set(first) == {(None, 3600.0), ("0 2 * * *", None)}
        assert {s.version for s in first.values()} == {"1"}
        eng.register(_pb("schedule:\n  - interval: 1h\n    args: {x: 1}\n"
                         "  - interval: 5m\n", "hooks:\n  - {name: h2, credential: c}\n"))
        with eng.store.read() as tx:
            second = {(s.cron, s.interval): s for s in tx.list_schedules("nightly")}
            assert {h.name for h in tx.list_hooks()} == {"h2"}
        assert set(second) == {(None, 3600.0), (None, 300.0)}
        kept = second[(None, 3600.0)]  # same timing: same schedule, now of version 2
        assert kept.schedule_id == first[(None, 3600.0)].schedule_id
        assert (kept.version, kept.args, kept.source) == ("2", {"x": 1}, "playbook")
        assert kept.next_run_at == first[(None, 3600.0)].next_run_at
        eng.register(_pb(""))
        with eng.store.read() as tx:
            assert tx.list_schedules("nightly") == [] and tx.list_hooks() == []
    finally:
        eng.store.close()


def test_a_declared_hook_cannot_take_another_hooks_name(sqlite_url: str) -> None:
    eng = Engine(open_store(sqlite_url))
    try:
        with eng.store.transaction() as tx:
            tx.put_hook(HookRow(name="taken", path="other", version=None, source="api",
                                auth="hmac", credential="c", args=None, delivery_header=None,
                                enabled=True))
        with pytest.raises(Conflict, match="hook named 'taken' already exists"):
            eng.register(_pb("", "hooks:\n  - {name: taken, credential: c}\n"))
        with eng.store.read() as tx:
            assert tx.list_catalog() == []  # the registration rolled back
    finally:
        eng.store.close()
