"""The per-step fast paths keep every protection of the hardening (session 4: its cost removed).

Each cache or short cut on the hot path is checked where it could go wrong: a change it must
notice (the environment, the set of secrets, the API token, a function's defaults), a value
it must still refuse or clean (a lone surrogate, a NaN, a huge product, a hostile render)."""

from __future__ import annotations

import functools
import threading
import time
import types
from typing import Any

import pytest

from noetl.errors import TemplateError
from noetl.settings import Settings
from noetl.templates import render_str
from noetl.tools.base import Services
from noetl.tools.python import call_main
from noetl.tools.step_env import step_environ
from noetl.worker.recordable import check
from noetl.worker.runner import run_work


def _work(code: str, step: str = "s") -> dict[str, Any]:
    return {"execution_id": 1, "step": step, "job_id": 1, "args": {},
            "action": {"type": "python", "code": code},
            "ctx": {"workload": {}, "execution_id": 1, "results": {}, "extra": {}}}


# -- the scrubbed environment, made once per change of os.environ ---------------------------

def test_step_environment_follows_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOETL_STEP_ENV_ALLOW", "FAST_PATH_VISIBLE")
    monkeypatch.delenv("FAST_PATH_VISIBLE", raising=False)
    assert "FAST_PATH_VISIBLE" not in step_environ()
    monkeypatch.setenv("FAST_PATH_VISIBLE", "one")
    assert step_environ()["FAST_PATH_VISIBLE"] == "one"  # a new variable is seen at once
    monkeypatch.setenv("FAST_PATH_VISIBLE", "two")
    assert step_environ()["FAST_PATH_VISIBLE"] == "two"  # and a changed value
    monkeypatch.setenv("NOETL_FAST_PATH_SECRET", "s3cret")
    monkeypatch.setenv("NOETL_STEP_ENV_ALLOW", "FAST_PATH_VISIBLE,NOETL_FAST_PATH_SECRET")
    assert "NOETL_FAST_PATH_SECRET" not in step_environ()  # NOETL_* never, even if allowed
    monkeypatch.delenv("FAST_PATH_VISIBLE")
    assert "FAST_PATH_VISIBLE" not in step_environ()  # and a removed one is gone


def test_each_step_gets_its_own_environment() -> None:
    code = ("import os\ndef main():\n"
            "    seen = os.environ.get('FAST_PATH_WRITTEN')\n"
            "    os.environ['FAST_PATH_WRITTEN'] = 'leaked'\n"
            "    return {'seen': seen}\n")
    for _ in range(2):
        out = run_work(_work(code))
        assert out["status"] == "ok", out.get("error")
        assert out["data"] == {"seen": None}  # the first step's write reached no other step
    assert "FAST_PATH_WRITTEN" not in step_environ()


# -- redaction: the list of hidden values is kept per set of secrets and token --------------

def test_redaction_follows_new_secrets_and_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOETL_API_TOKEN", raising=False)
    services = Services(secrets={"alpha-secret-1"})
    code = "def main():\n    return {'a': 'x alpha-secret-1 y', 'b': 'beta-secret-2', 't': 'tok-fast-9'}\n"
    out = run_work(_work(code), services)
    assert out["data"] == {"a": "x *** y", "b": "beta-secret-2", "t": "tok-fast-9"}
    services.secrets.add("beta-secret-2")  # a later step resolved another credential
    out = run_work(_work(code), services)
    assert out["data"] == {"a": "x *** y", "b": "***", "t": "tok-fast-9"}
    monkeypatch.setenv("NOETL_API_TOKEN", "tok-fast-9")  # and the token of a process that has it
    out = run_work(_work(code), Services(settings=Settings.from_env()))
    assert out["data"]["t"] == "***" and out["envelope"]["data"]["t"] == "***"


def test_longer_secret_redacted_before_its_prefix() -> None:
    services = Services(secrets={"abcd", "abcdefgh"})
    out = run_work(_work("def main():\n    return 'abcdefgh abcd'\n"), services)
    assert out["data"] == "*** ***"


# -- every outcome recordable: one shared encoder, the slow path only when needed ------------

def test_clean_outcome_is_returned_as_is() -> None:
    outcome = {"status": "ok", "data": {"i": 1, "s": "héllo", "f": 1.5}, "duration": 0.1}
    assert check(outcome) is outcome


def test_lone_surrogate_and_nul_still_made_recordable() -> None:
    out = check({"status": "ok", "data": {"s": "a\ud800b", "n": "x\x00y", "k\udfff": 1}})
    assert out["status"] == "ok"
    assert out["data"] == {"s": "a\\ud800b", "n": "x\\x00y", "k\\udfff": 1}
    out = run_work(_work("def main():\n    return {'s': 'a\\ud800b'}\n"))
    assert out["status"] == "ok" and out["data"] == {"s": "a\\ud800b"}


def test_recordable_outcome_beyond_plain_json_is_returned_as_is() -> None:
    """What the orjson fast path leaves to the stdlib's check (a tuple, a number key, a
    datetime) is still recordable as it is."""
    import datetime

    outcome = {"status": "ok", "data": {"t": (1, "a"), 2: None,
                                        "d": datetime.date(2024, 1, 2)}, "meta": None}
    assert check(outcome) is outcome


@pytest.mark.parametrize("value, message", [
    (float("nan"), "not a JSON number"),
    ([None, 1.5, float("inf")], "not a JSON number"),
    ({"x": None, "m": float("-inf")}, "not a JSON number"),
    (10 ** 5000, "more than 4000 digits"),
    ({(1, 2): 1}, "key of type tuple"),
], ids=["nan", "inf-beside-null", "minus-inf", "huge-int", "tuple-key"])
def test_unrecordable_values_still_refused(value: Any, message: str) -> None:
    out = check({"status": "ok", "data": {"v": value}})
    assert out["status"] == "error" and message in out["error"]["message"]


def test_cycle_still_refused() -> None:
    d: dict[str, Any] = {}
    d["me"] = d
    out = check({"status": "ok", "data": d})
    assert out["status"] == "error" and "contains itself" in out["error"]["message"]


# -- main()'s parameters, cached per code object --------------------------------------------

def test_parameters_cache_tells_functions_of_one_code_apart() -> None:
    def main(a: int, b: int = 2) -> Any:
        return (a, b)

    bare = types.FunctionType(main.__code__, {}, "main")  # same code, no defaults
    assert call_main(main, {"a": 1}, {}) == (1, 2)
    with pytest.raises(TypeError, match="parameter 'b' has no value"):
        call_main(bare, {"a": 1}, {})
    assert call_main(main, {"a": 1}, {}) == (1, 2)


def test_parameters_of_a_decorated_main_are_the_wrapped_ones() -> None:
    def deco(f: Any) -> Any:
        @functools.wraps(f)
        def inner(*args: Any, **kwargs: Any) -> Any:
            return f(*args, **kwargs)
        return inner

    @deco
    def one(x: int) -> Any:
        return ("one", x)

    @deco
    def two(y: int) -> Any:
        return ("two", y)

    assert one.__code__ is two.__code__  # the wrapper's code is shared
    assert call_main(one, {"x": 1, "y": 2}, {}) == ("one", 1)
    assert call_main(two, {"x": 1, "y": 2}, {}) == ("two", 2)


# -- templates: the render deadline, the number fast path -----------------------------------

def test_hostile_renders_time_out_in_several_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from noetl import sandbox

    monkeypatch.setattr(sandbox, "RENDER_SECONDS", 0.5)
    hostile = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    errors: list[str] = []

    def render() -> None:
        try:
            render_str(hostile, {}, "probe")
        except TemplateError as exc:
            errors.append(str(exc))

    t0 = time.monotonic()
    threads = [threading.Thread(target=render) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert time.monotonic() - t0 < 20
    assert len(errors) == 3 and all("time limit" in e for e in errors), errors
    assert not sandbox._deadlines  # every deadline removed
    assert render_str("{{ 40 + 2 }}", {}) == 42


def test_nested_time_limit_keeps_the_outer_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    from noetl import sandbox

    monkeypatch.setattr(sandbox, "RENDER_SECONDS", 0.3)
    t0 = time.monotonic()
    with pytest.raises((sandbox.TemplateTimeout, TemplateError)) as caught:
        with sandbox.time_limit():
            while True:  # each inner render is quick; together they pass the outer deadline
                assert render_str("{{ 1 + 1 }}", {}) == 2
    # the timeout lands in an inner render (which names it) or between two of them
    assert caught.type is sandbox.TemplateTimeout or "time limit" in str(caught.value)
    assert time.monotonic() - t0 < 10
    assert not sandbox._deadlines


@pytest.mark.parametrize("text", [
    "{{ (2 ** 6000) * (2 ** 6000) }}",  # an integer product past the bound, refused before
    "{{ 2 ** 9999 + 2 ** 9999 }}",  # a sum past the bound, refused after
    "{{ 'x' * 10 ** 9 }}",  # not plain numbers: the general checks
])
def test_number_fast_path_still_refuses(text: str) -> None:
    with pytest.raises(TemplateError, match="template refused"):
        render_str(text, {}, "probe")


def test_number_fast_path_results() -> None:
    assert render_str("{{ 6 * 7 }}", {}) == 42
    assert render_str("{{ 1.5 * 2 + 1 }}", {}) == 4.0
    assert render_str("{{ True + True }}", {}) == 2
    assert render_str("{{ 7 // 2 }} {{ 7 % 3 }} {{ 2 ** 10 }}", {}) == "3 1 1024"
    assert render_str("{{ 'ab'.upper() }}", {}) == "AB"
