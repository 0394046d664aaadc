"""A small synchronous client for the NoETL HTTP API (used by the CLI with ``--server`` and by
remote workers). Server URL from ``NOETL_SERVER_URL``, token from ``NOETL_API_TOKEN``.

HTTP errors become engine errors carrying the server's message: 404 → :class:`NotFound`,
409 → :class:`LeaseLost` / :class:`Conflict`, 422 with problems → :class:`PlaybookError`,
anything else → :class:`ApiError` (with ``status_code``)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from noetl.errors import Conflict, LeaseLost, NoetlError, NotFound, PlaybookError, Problem
from noetl.settings import Settings

DEFAULT_URL = "http://127.0.0.1:8082"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


class ApiError(NoetlError):
    """The server refused a request (or could not be reached: ``status_code`` 0)."""

    def __init__(self, message: str, status_code: int = 0):
        super().__init__(message)
        self.status_code = status_code


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        raise_for(resp.status_code, resp.content, str(resp.request.url))


def raise_for(code: int, content: bytes, url: str) -> None:
    """Raise the engine error an HTTP error answer ``code`` with body ``content`` stands for
    (shared with the worker's lean transport, ``noetl.worker.http_wire``)."""
    if code < 400:
        return
    try:
        from noetl.templates import loadb

        body = loadb(content) if content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    detail = body.get("detail")
    message = detail if isinstance(detail, str) else (
        str(detail) if detail else f"HTTP {code} from {url}")
    if code == 404:
        raise NotFound(message)
    if code == 409:
        raise (LeaseLost if body.get("error") == "lease_lost" else Conflict)(message)
    if code == 422 and isinstance(body.get("problems"), list):
        problems = [Problem(where=p.get("where", "?"), message=p.get("message", ""),
                            line=p.get("line"), severity=p.get("severity", "error"))
                    for p in body["problems"]]
        raise PlaybookError("<server>", problems)
    raise ApiError(f"HTTP {code}: {message}", code)


class Client:
    def __init__(self, server_url: str | None = None, token: str | None = None,
                 timeout: float = 30.0, max_connections: int = 32,
                 settings: Settings | None = None):
        """``server_url`` and ``token`` default to the settings' (NOETL_SERVER_URL,
        NOETL_API_TOKEN; ``settings`` default: read from the environment now)."""
        if not server_url or token is None:
            settings = settings or Settings.from_env()
            server_url = server_url or settings.server_url
            token = token if token is not None else settings.api_token
        self.server_url = (server_url or DEFAULT_URL).rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.server_url, headers=headers, timeout=timeout,
                                 limits=httpx.Limits(max_connections=max_connections,
                                                     max_keepalive_connections=max_connections))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        from noetl.templates import dumps

        kw: dict[str, Any] = {}
        if body is not None:
            kw["content"] = dumps(body).encode()
            kw["headers"] = {"Content-Type": "application/json"}
        if params:
            kw["params"] = {k: v for k, v in params.items() if v is not None}
        if timeout is not None:
            kw["timeout"] = timeout
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise ApiError(f"cannot reach the NoETL server at {self.server_url}: "
                           f"{type(exc).__name__}: {exc}") from exc
        _raise_for(resp)
        return resp.json()

    # catalog --------------------------------------------------------------------------------
    def register(self, content: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/api/catalog/register", {"content": content})
        return out

    def catalog_list(self, resource_type: str | None = None) -> list[dict[str, Any]]:
        out = self.request("POST", "/api/catalog/list", {"resource_type": resource_type})
        return list(out["entries"])

    def catalog_entry(self, path: str, version: str | int = "latest") -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/api/catalog/resource",
                                           {"path": path, "version": version})
        return out

    # executions -----------------------------------------------------------------------------
    def run(self, path: str | None = None, version: str | int = "latest",
            args: dict[str, Any] | None = None, merge: bool = False,
            catalog_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"path": path, "version": version, "args": args or None,
                                "merge": merge}
        if catalog_id:
            body["catalog_id"] = catalog_id
        out: dict[str, Any] = self.request("POST", "/api/run/playbook", body)
        return out

    def execution(self, execution_id: str | int) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", f"/api/executions/{execution_id}")
        return out

    def executions(self, **filters: Any) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", "/api/executions", params=filters)
        return out

    def wait(self, execution_id: str | int, timeout: float | None = None,
             interval: float = 0.1) -> dict[str, Any]:
        """Poll until the execution ends; return its description."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            desc = self.execution(execution_id)
            if desc["status"] in TERMINAL:
                return desc
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"execution {execution_id} still {desc['status']} after "
                                   f"{timeout} s")
            time.sleep(interval)
            interval = min(interval * 1.5, 1.0)

    def events(self, execution_id: str | int, since: int = 0,
               limit: int = 10000) -> list[dict[str, Any]]:
        """Events after sequence ``since``, in order (pages through the server's limit)."""
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            want = min(10000, limit - len(out))
            page = self.request("GET", f"/api/executions/{execution_id}/events",
                                params={"since_seq": since, "limit": want})
            out.extend(page["items"])
            if len(page["items"]) < want:
                break
            since = page["last_seq"]
        return out

    def cancel(self, execution_id: str | int) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", f"/api/executions/{execution_id}/cancel")
        return out

    # credentials ----------------------------------------------------------------------------
    def put_credential(self, name: str, type: str, data: dict[str, Any],
                       description: str | None = None,
                       tags: list[str] | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.request("POST", "/api/credentials", {
            "name": name, "type": type, "data": data, "description": description,
            "tags": tags or []})
        return out

    def credentials(self, type: str | None = None) -> list[dict[str, Any]]:
        return list(self.request("GET", "/api/credentials", params={"type": type})["items"])

    def credential(self, name: str, include_data: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = self.request(
            "GET", f"/api/credentials/{name}",
            params={"include_data": "true"} if include_data else None)
        return out

    def delete_credential(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.request("DELETE", f"/api/credentials/{name}")
        return out

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", "/health")
        return out

    # logs, lineage, rerun and resume --------------------------------------------------------
    def logs(self, execution_id: str | int, since: int = 0, step: str | None = None,
             item: int | None = None, wait: float = 0, limit: int = 1000) -> dict[str, Any]:
        """One page of step log records after ``since`` (long-polls up to ``wait`` s):
        ``{items, last_id, done, status}``."""
        out: dict[str, Any] = self.request(
            "GET", f"/api/executions/{execution_id}/logs",
            params={"since": since, "step": step, "item": item, "wait": wait or None,
                    "limit": limit}, timeout=wait + 30 if wait else None)
        return out

    def lineage(self, execution_id: str | int) -> dict[str, Any]:
        out: dict[str, Any] = self.request("GET", f"/api/executions/{execution_id}/lineage")
        return out

    def rerun(self, execution_id: str | int, args: dict[str, Any] | None = None,
              merge: bool = False, resume: bool = False) -> dict[str, Any]:
        """Re-run (or with ``resume``, resume) an execution; the new execution's summary."""
        out: dict[str, Any] = self.request(
            "POST", f"/api/executions/{execution_id}/{'resume' if resume else 'rerun'}",
            {"args": args or None, "merge": merge})
        return out


class CliClient(Client):
    """The client as the CLI uses it: an error prints ``error: <server message>`` and exits
    (1; 2 for an invalid playbook) instead of raising."""

    def request(self, method: str, path: str, body: Any = None,
                params: dict[str, Any] | None = None, timeout: float | None = None) -> Any:
        import sys

        try:
            return super().request(method, path, body, params, timeout)
        except PlaybookError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise SystemExit(2) from None
        except NoetlError as exc:
            sys.stderr.write(f"error: {exc}\n")
            raise SystemExit(1) from None
