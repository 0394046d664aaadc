"""What reached a tool: a tap on every embedded run of the compat tests.

The worker renders a step's args and action (``noetl.worker.runner``) and hands them to the tool
as a ``ToolCall``; a save's rendered ``data`` and settings go to a storage function. The tap
wraps ``runner.get_tool`` and the storage functions (the names ``run_save`` looks up when it
runs), so it sees exactly the inputs a tool receives, in-process. It records every string in
them that still holds ``{{`` or ``{%``. Keys a tool receives unrendered on purpose are left out:
python ``code`` (and ``code_b64``), and the keys the runner never renders (``save``, ``retry``,
``next``, ``task`` ...); a save ``statement``/``commands``/``sql`` is rendered by the storage
itself with the save's data. Base64 SQL (``command_b64``, ``commands_b64``) is decoded first:
NoETL decoded and then rendered it, so template text in it must not reach the database.

A run that *completed* while template text reached one of its tools is the failure
(:func:`violations`); a run that failed is not (it did not report success), and neither is text
equal to a string the caller passed as execution args (data, which is never rendered). Statuses come from
the engines of the runs (every ``Engine`` made while the tap is installed) or, when an engine is
gone, from the last ``describe`` of that execution.

Distributed runs happen in worker processes; for them :func:`scan_run` reads what the server
keeps: each step's rendered input (``steps[*].input``) and each save's data (``meta.save``).
The tap runs it on every run a test waits for through ``noetl.client.Client.wait``.
"""

from __future__ import annotations

import base64
import binascii
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from noetl.errors import NotFound

TEMPLATE_MARKS = ("{{", "{%")
UNRENDERED = frozenset({"code", "code_b64", "next", "save", "retry", "task", "step", "desc",
                        "description", "assert", "args", "type", "tool"})
SAVE_KEEP = frozenset({"code", "script", "statement", "commands", "sql"})
STORAGES = (("noetl.tools.save", "save_event"), ("noetl.tools.save_storage", "save_postgres"),
            ("noetl.tools.save_storage", "save_duckdb"), ("noetl.tools.save_storage", "save_http"),
            ("noetl.tools.save_storage", "save_python"))


@dataclass(frozen=True)
class Leak:
    execution_id: str
    step: str
    where: str  # e.g. "duckdb → command" or "save postgres → data.v"
    text: str

    def __str__(self) -> str:
        return f"execution {self.execution_id} step '{self.step}' {self.where}: {self.text!r}"


def _decoded(key: str, value: Any) -> Any:
    if key.endswith("_b64") and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return value
    return value


def find_templates(value: Any, where: str) -> list[tuple[str, str]]:
    """(path, text) of every string under ``value`` that holds ``{{`` or ``{%``."""
    out: list[tuple[str, str]] = []
    if isinstance(value, str):
        if any(m in value for m in TEMPLATE_MARKS):
            out.append((where, value[:300]))
    elif isinstance(value, dict):
        for k, v in value.items():
            out += find_templates(_decoded(str(k), v), f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            out += find_templates(v, f"{where}[{i}]")
    return out


def action_templates(tool: str, action: dict[str, Any], args: dict[str, Any]
                     ) -> list[tuple[str, str]]:
    found = find_templates(args, f"{tool} → args")
    for k, v in action.items():
        if k in UNRENDERED or (tool == "python" and k in ("code", "code_b64")):
            continue
        found += find_templates(_decoded(k, v), f"{tool} → {k}")
    return found


def save_templates(kind: str, cfg: dict[str, Any], data: Any) -> list[tuple[str, str]]:
    found = find_templates(data, f"save {kind} → data")
    for k, v in cfg.items():
        if k not in SAVE_KEEP:
            found += find_templates(v, f"save {kind} → {k}")
    return found


@dataclass
class Tap:
    calls: int = 0  # tool and save calls seen
    leaks: list[Leak] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)  # execution id -> calls
    statuses: dict[str, str] = field(default_factory=dict)  # from describe()
    engines: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    intended: set[str] = field(default_factory=set)  # runs a test leaks on purpose
    data: dict[str, set[str]] = field(default_factory=dict)  # caller-given strings per run
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, execution_id: Any, step: str, found: list[tuple[str, str]]) -> None:
        eid = str(execution_id)
        with self.lock:
            self.calls += 1
            self.seen[eid] = self.seen.get(eid, 0) + 1
            self.leaks += [Leak(eid, step, w, t) for w, t in found]

    def status(self, execution_id: str) -> str | None:
        for engine in list(self.engines):
            try:
                return str(engine.describe(int(execution_id), with_steps=False)["status"])
            except NotFound:
                continue
            except Exception:  # a closed store
                continue
        return self.statuses.get(execution_id)

    def violations(self, since: int = 0) -> list[str]:
        """Leaks (recorded after ``since``) in runs that completed, unless meant."""
        with self.lock:
            leaks = self.leaks[since:]
        out = []
        for leak in leaks:
            if leak.execution_id in self.intended or \
                    leak.text in self.data.get(leak.execution_id, ()):
                continue
            status = self.status(leak.execution_id)
            if status == "COMPLETED":
                out.append(f"{leak} (the run COMPLETED)")
        return out

    def caller_data(self, execution_id: Any, args: Any) -> None:
        """Strings a caller passed as execution args are data, never rendered: text equal to
        one of them reaching a tool is not a template the run should have rendered."""
        found = {text for _, text in find_templates(args, "args")}
        if found:
            with self.lock:
                self.data.setdefault(str(execution_id), set()).update(found)

    def leaks_of(self, execution_id: Any) -> list[Leak]:
        with self.lock:
            return [x for x in self.leaks if x.execution_id == str(execution_id)]


TAP = Tap()


def install(mp: Any) -> Tap:
    """Wrap the tool lookup, the storages and the engine (``mp``: a pytest MonkeyPatch)."""
    import importlib

    from noetl.engine.core import Engine
    from noetl.worker import runner

    real_get_tool = runner.get_tool

    def get_tool(name: str) -> Any:
        tool = real_get_tool(name)

        def tapped(call: Any) -> Any:
            TAP.record(call.execution_id, call.step, action_templates(name, call.action,
                                                                      call.args))
            return tool(call)

        return tapped

    mp.setattr(runner, "get_tool", get_tool)
    for module_name, func in STORAGES:
        module = importlib.import_module(module_name)
        real = getattr(module, func)
        kind = func.removeprefix("save_")

        def storage(cfg: dict[str, Any], data: Any, services: Any, work: dict[str, Any],
                    _real: Any = real, _kind: str = kind) -> Any:
            TAP.record(work.get("execution_id"), str(work.get("step")),
                       save_templates(_kind, cfg, data))
            return _real(cfg, data, services, work)

        mp.setattr(module, func, storage)

    real_init, real_describe = Engine.__init__, Engine.describe

    def init(self: Any, *a: Any, **kw: Any) -> None:
        real_init(self, *a, **kw)
        TAP.engines.add(self)

    def describe(self: Any, execution_id: int, with_steps: bool = True) -> dict[str, Any]:
        out = real_describe(self, execution_id, with_steps)
        TAP.statuses[str(execution_id)] = str(out.get("status"))
        return out

    real_start = Engine.start

    def start(self: Any, *a: Any, **kw: Any) -> Any:
        row = real_start(self, *a, **kw)
        TAP.caller_data(row.execution_id, kw.get("args"))
        return row

    mp.setattr(Engine, "__init__", init)
    mp.setattr(Engine, "describe", describe)
    mp.setattr(Engine, "start", start)

    from noetl.client import Client

    real_wait = Client.wait

    def wait(self: Any, execution_id: str | int, *a: Any, **kw: Any) -> dict[str, Any]:
        out: dict[str, Any] = real_wait(self, execution_id, *a, **kw)
        eid = str(execution_id)
        TAP.statuses[eid] = str(out.get("status"))
        found = scan_run(out, self.events(execution_id, limit=100000))
        with TAP.lock:
            TAP.leaks += [Leak(eid, text.split("'")[1], "server-kept", text) for text in found]
        return out

    real_run = Client.run

    def run(self: Any, *a: Any, **kw: Any) -> dict[str, Any]:
        out: dict[str, Any] = real_run(self, *a, **kw)
        TAP.caller_data(out.get("execution_id"), kw.get("args") if "args" in kw
                        else (a[2] if len(a) > 2 else None))
        return out

    mp.setattr(Client, "wait", wait)
    mp.setattr(Client, "run", run)
    return TAP


def scan_run(desc: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """Template text in what a server keeps of a run: step inputs and saved data."""
    found = []
    for name, step in (desc.get("steps") or {}).items():
        found += [f"step '{name}' {w}: {t!r}" for w, t in
                  find_templates(step.get("input"), "input")]
    for e in events:
        save = (e.get("meta") or {}).get("save") if isinstance(e.get("meta"), dict) else None
        if isinstance(save, dict):
            found += [f"step '{e.get('node_name')}' {w}: {t!r}" for w, t in
                      find_templates(save.get("data"), "meta.save.data")]
    return found
