"""``noetl schedule`` and ``noetl hook``: manage schedules and webhooks.

Without ``--server`` the commands work on the store (``--store`` / ``NOETL_STORE_URL`` /
``$NOETL_HOME/noetl.db``); a server on that store fires the schedules. With ``--server`` (or
``NOETL_SERVER_URL``) they call the server's ``/api/schedules`` and ``/api/hooks``.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import typer

from noetl.cli.app import JsonOpt, PayloadOpt, ServerOpt, SetOpt, StoreOpt, app, group
from noetl.cli.common import build_args, fail, print_json

schedule_app = group("Schedules: run playbooks by cron or interval.")
hook_app = group("Webhooks: POST /api/hooks/NAME starts a playbook.")
app.add_typer(schedule_app, name="schedule")
app.add_typer(hook_app, name="hook")


class _Local:
    """The same operations as the server's routes, on the store."""

    def __init__(self, store: str | None):
        from noetl.engine.core import Engine
        from noetl.store import open_store

        self.engine = Engine(open_store(store))

    def call(self, name: str, *args: Any) -> Any:
        from noetl.triggers import manage

        return getattr(manage, name)(self.engine, *args)


def _do(server: str | None, store: str | None, local: tuple[Any, ...],
        remote: tuple[Any, ...]) -> Any:
    """Run ``manage.<local[0]>(*local[1:])`` on the store, or ``remote`` (method, path, body,
    query?) on the server; engine errors become one line on stderr and exit 1."""
    from noetl.errors import NoetlError

    try:
        if server:
            from noetl.client import CliClient

            method, path, body = remote[:3]
            params = remote[3] if len(remote) > 3 else None
            return CliClient(server).request(method, path, body, params)
        return _Local(store).call(*local)
    except (NoetlError, ValueError) as exc:
        raise fail(str(exc)) from None


def _when(t: float | None, tz: str = "UTC") -> str:
    if t is None:
        return "-"
    from noetl.dsl.cron import zone

    return dt.datetime.fromtimestamp(t, zone(tz)).strftime("%Y-%m-%d %H:%M:%S %Z")


def _print_schedules(items: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("path", "when", "enabled", "next fire", "last", "source")
    t.add_column("id", no_wrap=True)
    for s in items:
        nxt = s["next_fires"][0] if s.get("next_fires") else None
        last = s.get("last_status") or "-"
        if s.get("last_execution_status"):
            last += f" ({s['last_execution_status']})"
        t.add_row(s["path"], s["timing"], "yes" if s["enabled"] else "paused",
                  _when(nxt, s["timezone"]), last, s["source"], s["schedule_id"])
    Console().print(t)


@schedule_app.command("list")
def schedule_list(path: str = typer.Argument(None, help="Only this playbook's schedules."),
                  store: str = StoreOpt, server: str = ServerOpt,
                  as_json: bool = JsonOpt) -> None:
    """List schedules with their next fire time and last run."""
    out = _do(server, store, ("list_schedules", path),
              ("GET", "/api/schedules", None, {"path": path} if path else None))
    _print_schedules(out["items"] if isinstance(out, dict) else out, as_json)


@schedule_app.command("add")
def schedule_add(path: str = typer.Argument(..., help="Catalog path of the playbook."),
                 cron: str = typer.Option(None, "--cron", help="Cron expression, e.g. '0 2 * * *'."),
                 interval: str = typer.Option(None, "--interval", help="e.g. 30s, 5m, 1h."),
                 timezone: str = typer.Option(None, "--timezone", "--tz",
                                              help="IANA zone for --cron (default UTC)."),
                 version: str = typer.Option(None, "--version", "-v",
                                             help="Version to run (default: latest at fire time)."),
                 catchup: str = typer.Option("skip", "--catchup", help="skip | one"),
                 overlap: str = typer.Option("skip", "--overlap",
                                             help="skip | allow | cancel_previous"),
                 paused: bool = typer.Option(False, "--paused", help="Add it paused."),
                 name: str = typer.Option(None, "--name"),
                 set_: list[str] = SetOpt, payload: str = PayloadOpt,
                 store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Add a schedule (source api: kept when the playbook is registered again)."""
    spec = {"path": path, "cron": cron, "interval": interval, "timezone": timezone,
            "version": version, "catchup": catchup, "overlap": overlap,
            "enabled": not paused, "name": name, "args": build_args(set_, payload) or None}
    spec = {k: v for k, v in spec.items() if v is not None}
    out = _do(server, store, ("add_schedule", spec), ("POST", "/api/schedules", spec))
    if as_json:
        print_json(out)
    else:
        nxt = _when(out["next_fires"][0], out["timezone"]) if out["next_fires"] else "paused"
        sys.stdout.write(f"schedule {out['schedule_id']}: {path} {out['timing']}; "
                         f"next fire {nxt}\n")


def _enabled(schedule_id: str, enabled: bool, store: str | None, server: str | None,
             as_json: bool) -> None:
    verb = "resume" if enabled else "pause"
    out = _do(server, store, ("set_enabled", schedule_id, enabled),
              ("POST", f"/api/schedules/{schedule_id}/{verb}", None))
    if as_json:
        print_json(out)
    else:
        sys.stdout.write(f"schedule {schedule_id} {verb}d\n")


@schedule_app.command("pause")
def schedule_pause(schedule_id: str = typer.Argument(...), store: str = StoreOpt,
                   server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Pause a schedule (no fires until resumed)."""
    _enabled(schedule_id, False, store, server, as_json)


@schedule_app.command("resume")
def schedule_resume(schedule_id: str = typer.Argument(...), store: str = StoreOpt,
                    server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Resume a schedule; its next fire is the first one from now."""
    _enabled(schedule_id, True, store, server, as_json)


@schedule_app.command("delete")
def schedule_delete(schedule_id: str = typer.Argument(...), store: str = StoreOpt,
                    server: str = ServerOpt) -> None:
    """Delete a schedule (its runs stay recorded)."""
    _do(server, store, ("delete_schedule", schedule_id),
        ("DELETE", f"/api/schedules/{schedule_id}", None))
    sys.stdout.write(f"schedule {schedule_id} deleted\n")


@schedule_app.command("next")
def schedule_next(path: str = typer.Argument(..., help="Catalog path of the playbook."),
                  count: int = typer.Option(5, "--count", "-n", min=1, max=100),
                  store: str = StoreOpt, server: str = ServerOpt,
                  as_json: bool = JsonOpt) -> None:
    """The next fire times of a playbook's enabled schedules."""
    out = _do(server, store, ("next_fires", path, count),
              ("GET", "/api/schedules", None, {"path": path, "n": count}))
    items = [s for s in (out["items"] if isinstance(out, dict) else out) if s["enabled"]]
    if as_json:
        print_json([{"schedule_id": s["schedule_id"], "timing": s["timing"],
                     "next_fires": s["next_fires"]} for s in items])
        return
    if not items:
        sys.stdout.write(f"{path}: no enabled schedule\n")
    for s in items:
        sys.stdout.write(f"schedule {s['schedule_id']} ({s['timing']}):\n")
        for t in s["next_fires"]:
            sys.stdout.write(f"  {_when(t, s['timezone'])}\n")


@schedule_app.command("runs")
def schedule_runs(schedule_id: str = typer.Argument(...),
                  limit: int = typer.Option(20, "--limit", min=1, max=10000),
                  store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """A schedule's fires, newest first: started, caught_up, skipped, missed or error."""
    out = _do(server, store, ("schedule_runs", schedule_id, limit),
              ("GET", f"/api/schedules/{schedule_id}/runs", None, {"limit": limit}))
    items = out["items"] if isinstance(out, dict) else out
    if as_json:
        print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("nominal", "outcome", "execution", "status", "lag")
    for r in items:
        lag = f"{r['lag']:.3f}s" if r.get("lag") is not None else ""
        extra = f" ×{r['detail']['count']}" if r["outcome"] == "missed" else ""
        t.add_row(_when(r["nominal_at"]), r["outcome"] + extra, r.get("execution_id") or "",
                  r.get("status") or "", lag)
    Console().print(t)


@hook_app.command("add")
def hook_add(name: str = typer.Argument(..., help="The hook's name: POST /api/hooks/NAME."),
             path: str = typer.Argument(..., help="Catalog path of the playbook."),
             secret: str = typer.Option(None, "--secret", envvar="NOETL_HOOK_SECRET",
                                        help="The hook's secret (stored as credential hook.NAME)."),
             credential: str = typer.Option(None, "--credential",
                                            help="An existing credential holding 'secret'."),
             auth: str = typer.Option("hmac", "--auth", help="hmac | bearer"),
             arg: list[str] = typer.Option(None, "--arg",
                                           help="key=template over body/headers (repeatable); "
                                                "default: the JSON body is the args."),
             delivery_header: str = typer.Option(None, "--delivery-header"),
             version: str = typer.Option(None, "--version", "-v"),
             store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """Create or replace a webhook."""
    args: dict[str, Any] = {}
    for item in arg or []:
        key, sep, val = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"--arg expects key=template, got {item!r}")
        args[key] = val
    spec = {"path": path, "secret": secret, "credential": credential, "auth": auth,
            "args": args or None, "delivery_header": delivery_header, "version": version}
    spec = {k: v for k, v in spec.items() if v is not None}
    out = _do(server, store, ("put_hook", name, spec), ("PUT", f"/api/hooks/{name}", spec))
    if as_json:
        print_json(out)
    else:
        sys.stdout.write(f"hook {name}: POST {out['url']} starts {path} ({out['auth']})\n")


@hook_app.command("list")
def hook_list(store: str = StoreOpt, server: str = ServerOpt, as_json: bool = JsonOpt) -> None:
    """List webhooks (secrets are never shown)."""
    out = _do(server, store, ("list_hooks",), ("GET", "/api/hooks", None))
    items = out["items"] if isinstance(out, dict) else out
    if as_json:
        print_json(items)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table("name", "path", "auth", "credential", "enabled", "source")
    for h in items:
        t.add_row(h["name"], h["path"], h["auth"], h["credential"],
                  "yes" if h["enabled"] else "no", h["source"])
    Console().print(t)


@hook_app.command("delete")
def hook_delete(name: str = typer.Argument(...), store: str = StoreOpt,
                server: str = ServerOpt) -> None:
    """Delete a webhook (its credential stays)."""
    _do(server, store, ("delete_hook", name), ("DELETE", f"/api/hooks/{name}", None))
    sys.stdout.write(f"hook {name} deleted\n")
