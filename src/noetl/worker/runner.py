"""Run one work package: render, run the tool, run the save, and describe the outcome.

Never raises: every failure becomes an ``error`` outcome with the exception type, message and
traceback, so no error is lost between the tool and the event log.
"""

from __future__ import annotations

import base64
import sys
import threading
import time
import traceback
import uuid
from functools import lru_cache
from typing import Any, cast
from urllib.parse import quote, quote_plus, urlsplit

from noetl.domain.wire import ErrorInfo, LogRecord, Outcome, Work
from noetl.dsl.tools_spec import spec, unrendered
from noetl.errors import ToolError, user_details
from noetl.settings import Settings
from noetl.templates import context, dumps, render, render_step_args, tool_context
from noetl.tools.base import Services, ToolCall
from noetl.tools.output import StepLog, capture_job
from noetl.tools.registry import get_tool
from noetl.tools.save import run_save
from noetl.worker.recordable import check, text

ERROR_STATUSES = frozenset({"error", "failed", "failure", "fail"})


def _call_timed(tool: Any, call: ToolCall, timeout: float) -> Any:
    """``tool(call)`` in its own daemon thread, waited for at most ``timeout`` seconds.

    A tool without its own timeout cannot be stopped, so its thread may run on after the step
    failed with ``TimeoutError``; being a daemon, it does not keep the process alive (a
    ``noetl run`` or a worker exits without waiting for it, as an executor's threads would).
    Past ``timeout``: ``ToolError`` TimeoutError.
    (concurrent.futures is imported here: most runs have no such step, and a ``noetl run``
    pays for every module it imports.)"""
    from concurrent.futures import Future

    fut: Future[Any] = Future()

    def target() -> None:
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(tool(call))
        except BaseException as exc:  # handed to the waiting thread
            fut.set_exception(exc)

    threading.Thread(target=target, name=f"noetl-timed-{call.step}", daemon=True).start()
    try:
        return fut.result(timeout=timeout)
    except TimeoutError:
        if fut.done():  # the tool's own TimeoutError (a socket's), raised in time: its error
            raise
        raise ToolError(f"step '{call.step}' timed out after {timeout:g} s",
                        "TimeoutError") from None


def normalize(raw: Any) -> dict[str, Any]:
    """Tool output → envelope ``{id, status, data, error?, meta?}``."""
    if isinstance(raw, dict) and "status" in raw and "data" in raw:
        env = dict(raw)
        status = str(env.get("status") or "success").lower()
        env["status"] = "error" if status in ERROR_STATUSES else "success"
        env.setdefault("id", str(uuid.uuid4()))
        return env
    return {"id": str(uuid.uuid4()), "status": "success", "data": raw}


def render_context(work: Work) -> dict[str, Any]:
    c = work["ctx"]
    return context({"workload": c.get("workload") or {}, "execution_id": c.get("execution_id")},
                   c.get("results") or {}, c.get("extra") or {})


def render_args(work: Work, ctx: dict[str, Any]) -> dict[str, Any]:
    """The step's args rendered with the incoming edge's values as bare names; the edge's
    values win over the step's own."""
    return render_step_args(work.get("args") or {}, work.get("edge_args") or {}, ctx,
                            f"step '{work['step']}' → args")


def render_action(work: Work, ctx: dict[str, Any]) -> dict[str, Any]:
    """The tool configuration rendered, but for the keys its spec leaves as written
    (:func:`noetl.dsl.tools_spec.unrendered`: python code, the engine's own keys)."""
    action = work["action"]
    where = f"step '{work['step']}'"
    keep = unrendered(action.get("type"))
    out = {}
    for k, v in action.items():
        out[k] = v if k in keep else render(v, ctx, f"{where} → {k}")
    return out


def _error(exc: BaseException, work: Work) -> ErrorInfo:
    """The error record: message, type, the whole traceback (engine frames included) and the
    user-facing keys (:data:`noetl.errors.USER_KEYS`) shown before it."""
    err: dict[str, Any]
    if isinstance(exc, ToolError):
        err = {"message": str(exc), "type": exc.error_type,
               "traceback": exc.traceback or traceback.format_exc()}
    else:
        err = {"message": str(exc) or type(exc).__name__, "type": type(exc).__name__,
               "traceback": traceback.format_exc()}
    err.update(user_details(exc))
    if err.get("user_traceback"):  # a python step's own frames: at the YAML file's lines
        from noetl.tools.python import at_yaml_lines, raised_at

        code, at = (work.get("action") or {}).get("code"), work.get("code_at")
        for key in ("user_traceback", "message", "traceback"):
            err[key] = at_yaml_lines(err[key], code, at)
        where = raised_at(err["user_traceback"], at)
        if where:
            err["at"] = where
    return cast(ErrorInfo, err)  # message, type, traceback and the USER_KEYS: ErrorInfo's


def retryable(exc: BaseException, ttype: Any) -> bool:
    """May a retry policy run the step again after ``exc``? Not when the tool said so
    (``ToolError(retryable=False)``) or its spec lists the error type as non-retryable."""
    if not isinstance(exc, ToolError):
        return True
    sp = spec(ttype if isinstance(ttype, str) else None)
    return exc.retryable and not (sp is not None and exc.error_type in sp.non_retryable)


def redact(value: Any, secrets: set[str]) -> Any:
    """``value`` with every resolved credential secret (4+ characters) replaced by ``***``."""
    return _redact(value, _longest_first(frozenset(secrets))) if secrets else value


def _redact(value: Any, hidden: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for v in hidden:
            if v in value:
                value = value.replace(v, "***")
        return value
    if isinstance(value, dict):
        return {k: _redact(v, hidden) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, hidden) for v in value]
    return value


@lru_cache(maxsize=64)
def _longest_first(secrets: frozenset[str]) -> tuple[str, ...]:
    """What :func:`redact` replaces (4+ characters), longest first: sorted once per set."""
    return tuple(sorted((x for x in secrets if len(x) >= 4), key=lambda x: (-len(x), x)))


def run_work(work: Work, services: Services | None = None) -> Outcome:
    """Run a work package; the outcome never carries a credential secret a tool resolved.

    What the job writes (stdout, stderr, ``logging``) is captured in ``services.log`` (a new
    :class:`StepLog` when unset); what a heartbeat did not already take travels as the
    outcome's ``logs``, which a job that wrote nothing does not have."""
    services = services or Services()
    log = services.log if services.log is not None else StepLog.configured(services.config)
    with capture_job(log):
        outcome = check(_run_work(work, services))  # encodable: never a report refused for ever
    hidden = _job_hidden(services)
    records = log.drain(final=True)
    if records:
        outcome["logs"] = [{**r, "message": text(_redact(r["message"], hidden))}
                           for r in records]
    return cast(Outcome, _redact(outcome, hidden)) if hidden else outcome


def storable_logs(records: list[LogRecord], secrets: set[str]) -> list[LogRecord]:
    """Log records as they may leave the worker: secrets redacted, text storable."""
    return [{**r, "message": text(redact(r["message"], secrets))} for r in records]


def job_secrets(services: Services) -> set[str]:
    return with_encodings({s for s in services.secrets if isinstance(s, str)},
                          _own_secrets(services.config))


def _job_hidden(services: Services) -> tuple[str, ...]:
    """What :func:`job_secrets` hides, longest first: computed once per set of secrets and
    of this process's own, not per step (nothing at all when there are none)."""
    secrets = frozenset(s for s in services.secrets if isinstance(s, str))
    own = _own_secrets(services.config)
    if not secrets and not own:
        return ()
    return _hidden(secrets | own)


@lru_cache(maxsize=64)
def _hidden(secrets: frozenset[str]) -> tuple[str, ...]:
    return _longest_first(_encoded(secrets))


def process_secrets(settings: Settings, argv: tuple[str, ...] = ()) -> set[str]:
    """This process's own secrets (a step that reads the real environment, /proc/self/environ,
    of a worker, or of a server running steps itself, must not record them): the API token,
    the credential key and the password of a store URL (in the settings or on the command
    line ``argv``, /proc/self/cmdline)."""
    out = {v for v in (settings.api_token, settings.encryption_key) if v}
    for url in (settings.store_url or "", *argv):
        if "://" in url and "@" in url:
            try:
                password = urlsplit(url).password
            except ValueError:
                password = None
            if password:
                out.add(password)
    return out


# (settings, command line, their process secrets): read again only when either changes
_own: tuple[Settings | None, tuple[str, ...], frozenset[str]] = (None, (), frozenset())


def _own_secrets(settings: Settings) -> frozenset[str]:
    global _own
    kept, argv = _own, tuple(sys.argv)
    if kept[0] is not settings or kept[1] != argv:
        kept = _own = (settings, argv, frozenset(process_secrets(settings, argv)))
    return kept[2]


def with_encodings(secrets: set[str], own: frozenset[str] = frozenset()) -> set[str]:
    """The secrets, this process's own (``own``: :func:`process_secrets`), and how they travel
    encoded: base64 (as in an ``Authorization: Basic`` header, of ``user:password``) and
    URL-encoded."""
    return set(_encoded(frozenset(secrets) | own))


@lru_cache(maxsize=64)
def _encoded(secrets: frozenset[str]) -> frozenset[str]:
    out = set(secrets)
    for v in secrets:
        if len(v) < 4:
            continue
        raw = v.encode("utf-8", "backslashreplace")
        b64 = base64.b64encode(raw).decode()
        out.update({b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode(),
                    quote(v, safe=""), quote_plus(v)})
    return frozenset(out)


def _run_work(work: Work, services: Services) -> Outcome:
    t0 = time.perf_counter()
    services.extra = {}
    envelope: dict[str, Any] | None = None
    rendered_input: dict[str, Any] | None = None
    try:
        ctx = render_context(work)
        args = render_args(work, ctx)
        rendered_input = args
        ctx = tool_context(ctx, args)
        if "preset" in work:  # output made elsewhere (a child execution, a loop): save only
            envelope = {"id": str(uuid.uuid4()), "status": "success", "data": work["preset"]}
            if work.get("preset_meta"):
                envelope["meta"] = dict(work["preset_meta"])
        else:
            action = render_action(work, ctx)
            ttype = str(action.get("type") or "noop")
            call = ToolCall(action=action, args=args, ctx=ctx, execution_id=work["execution_id"],
                            step=work["step"], attempt=int(work.get("attempt") or 1),
                            index=work.get("index"), timeout=work.get("timeout"),
                            isolate=bool(work.get("lease_expiries")), services=services)
            tool = get_tool(ttype)
            sp = spec(ttype)
            if call.timeout and not (sp is not None and sp.own_timeout):  # else: its own
                raw = _call_timed(tool, call, call.timeout)
            else:
                raw = tool(call)
            envelope = normalize(raw)
        meta = dict(envelope.get("meta") or {})
        if services.extra.get("stdout"):
            meta["stdout"] = services.extra["stdout"]
        if envelope["status"] == "error":
            err = envelope.get("error")
            message = err if isinstance(err, str) else (
                (err or {}).get("message") if isinstance(err, dict) else None)
            return _outcome_error({"message": message or "tool returned status error",
                                   "type": (err or {}).get("type", "ToolError")
                                   if isinstance(err, dict) else "ToolError",
                                   "traceback": envelope.get("traceback")}, envelope, meta, t0)
        data = envelope.get("data")
        save = work.get("save")
        if save:
            meta["save"], saved = run_save(save, envelope, ctx, services, work)
            if work["action"].get("type") == "save":  # a `type: save` step: its result is
                data = envelope["data"] = saved      # what it saved
        if meta:
            envelope["meta"] = meta
        return {"status": "ok", "data": data, "envelope": envelope, "meta": meta or None,
                "duration": time.perf_counter() - t0, "input": _small(rendered_input)}
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # never the worker's thread
        meta = {"stdout": services.extra["stdout"]} if services.extra.get("stdout") else {}
        err = _error(exc, work)
        final = not retryable(exc, (work.get("action") or {}).get("type"))
        if final:
            err["message"] += " (not retryable)"  # (the envelope's error says it too)
        out = _outcome_error(err, envelope, meta, t0)
        out["input"] = _small(rendered_input)
        if final:
            out["final"] = True  # the engine retries no final outcome, whatever the policy
        return out


INPUT_LIMIT = 65536


def _small(args: dict[str, Any] | None) -> Any:
    """The rendered input, kept on the step row for people to inspect (large ones cut)."""
    if not args:
        return None
    try:
        text = dumps(args)
    except (ValueError, TypeError, RecursionError) as exc:  # the outcome check names the value
        return {"unrecordable": f"{type(exc).__name__}: {exc}"[:500]}
    return args if len(text) <= INPUT_LIMIT else {"truncated": text[:INPUT_LIMIT]}


def _outcome_error(err: ErrorInfo, envelope: Any, meta: dict[str, Any],
                   t0: float) -> Outcome:
    env = dict(envelope) if isinstance(envelope, dict) else {"id": str(uuid.uuid4())}
    env["status"] = "error"
    env["error"] = err["message"]
    return {"status": "error", "error": err, "envelope": env, "meta": meta or None,
            "data": env.get("data"), "duration": time.perf_counter() - t0}
