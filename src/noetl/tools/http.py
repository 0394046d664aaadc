"""``type: http``: one HTTP request.

Fields: ``endpoint`` (or ``url``), ``method`` (GET), ``headers``, ``params``, ``data``,
``json``, ``body``, ``payload`` (legacy ``data``), ``verify`` (TLS verification, default true),
``auth``. The step ``timeout`` (else 30 s) bounds the request.

* ``data``: for GET/DELETE/HEAD it is the query string, otherwise the JSON body;
  ``data.query`` / ``data.body`` set them explicitly. ``json`` is a JSON body; ``body`` is sent
  as is when it is text, as JSON otherwise. When none of ``data``/``params``/``json``/``body``/
  ``payload`` is given, the step ``args`` play the role of ``data`` (NoETL's fixtures pass query
  parameters that way).
* ``auth``: a credential (name or map, see :mod:`noetl.tools.auth`) of type ``bearer``
  (``token``), ``basic`` (``username``/``user`` + ``password``), ``api_key`` (``key`` = header
  name, ``value``) or ``header`` (``headers`` mapping, or the data itself).
* Result: ``{status_code, headers, url, elapsed, data}``, ``data`` being parsed JSON, else text.
  A non-2xx response fails the step; the result is still returned inside the error envelope, so
  ``retry_when: "{{ status_code >= 500 }}"`` sees it.
* One ``httpx.Client`` per worker process (created on first use, thread-safe, keeps
  connections alive; a forked child makes its own).
* ``NOETL_HTTP_REWRITE``: comma-separated ``PREFIX=REPLACEMENT`` pairs applied to every request
  URL, for running playbooks with hard-coded public URLs against local fixtures, e.g.
  ``NOETL_HTTP_REWRITE="https://httpbin.org=http://127.0.0.1:8765"``.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any

import httpx

from noetl.errors import ToolError
from noetl.tools.auth import Resolved, auth_of, resolve_auth, scrub
from noetl.tools.base import Services, ToolCall

DEFAULT_TIMEOUT = 30.0
QUERY_METHODS = frozenset({"GET", "DELETE", "HEAD", "OPTIONS"})
_lock = threading.Lock()
_clients: dict[bool, httpx.Client] = {}


_pid = os.getpid()


def client(verify: bool = True) -> httpx.Client:
    global _pid
    if _pid != os.getpid():  # forked: never share the parent's sockets
        with _lock:
            if _pid != os.getpid():
                _clients.clear()
                _pid = os.getpid()
    c = _clients.get(verify)
    if c is None:
        with _lock:
            c = _clients.get(verify)
            if c is None:
                c = httpx.Client(verify=verify, follow_redirects=True,
                                 limits=httpx.Limits(max_connections=64,
                                                     max_keepalive_connections=32))
                _clients[verify] = c
    return c


def rewrite(url: str, spec: str) -> str:
    """``url`` with the first matching ``prefix=replacement`` of ``spec`` (NOETL_HTTP_REWRITE,
    comma-separated) applied."""
    for pair in spec.split(","):
        prefix, sep, repl = pair.strip().partition("=")
        if sep and prefix and url.startswith(prefix):
            return repl + url[len(prefix):]
    return url


def auth_headers(res: Resolved | None) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Headers (and basic-auth pair) for a resolved credential."""
    if res is None:
        return {}, None
    d = res.data
    kind = (res.type or d.get("type") or "").lower()
    if kind == "basic" or (not kind and "password" in d and ("username" in d or "user" in d)):
        return {}, (str(d.get("username") or d.get("user") or ""), str(d.get("password") or ""))
    if kind in ("api_key", "apikey"):
        name = str(d.get("key") or d.get("header") or "X-API-Key")
        return {name: str(d.get("value") or d.get("api_key") or "")}, None
    if kind == "header":
        hdrs: dict[str, Any] = d["headers"] if isinstance(d.get("headers"), dict) else d
        return {str(k): str(v) for k, v in hdrs.items()}, None
    token = d.get("token") or d.get("access_token") or d.get("bearer") or d.get("value")
    if kind in ("bearer", "token", "oauth2") or token:
        if not token:
            raise ToolError("auth: bearer credential has no 'token'", "AuthError")
        return {"Authorization": f"Bearer {token}"}, None
    raise ToolError(f"auth: credential type '{kind or '?'}' cannot be used for http "
                    "(bearer, basic, api_key or header)", "AuthError")


def _request_parts(action: dict[str, Any], args: dict[str, Any],
                   method: str) -> dict[str, Any]:
    params = dict(action.get("params") or {})
    parts: dict[str, Any] = {}
    given = [k for k in ("data", "json", "body", "payload") if action.get(k) is not None]
    data = action.get("data", action.get("payload"))
    if not given and not params and args:
        data = {k: v for k, v in args.items() if k not in ("auth", "credential", "credentials")}
    if isinstance(data, dict) and ("query" in data or "body" in data) and \
            set(data) <= {"query", "body", "headers"}:
        params.update(data.get("query") or {})
        if data.get("body") is not None:
            parts["json"] = data["body"]
    elif data is not None:
        if method in QUERY_METHODS and isinstance(data, dict):
            params.update(data)
        else:
            parts["json"] = data
    if action.get("json") is not None:
        parts["json"] = action["json"]
    body = action.get("body")
    if body is not None:
        if isinstance(body, (str, bytes)):
            parts.pop("json", None)
            parts["content"] = body
        else:
            parts["json"] = body
    if params:
        parts["params"] = {k: (json.dumps(v) if isinstance(v, (dict, list)) else
                               ("true" if v is True else "false" if v is False else v))
                           for k, v in params.items() if v is not None}
    return parts


def parse_body(resp: httpx.Response) -> Any:
    text = resp.text
    if not text:
        return None
    ctype = resp.headers.get("content-type", "")
    if "json" in ctype or text[:1] in "{[":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def request(url: str, method: str = "GET", headers: dict[str, Any] | None = None,
            timeout: float = DEFAULT_TIMEOUT, verify: bool = True,
            services: Services | None = None, basic: tuple[str, str] | None = None,
            **parts: Any) -> tuple[httpx.Response, dict[str, Any]]:
    url = rewrite(url, services.config.http_rewrite if services is not None else "")
    hdrs = {str(k): str(v) for k, v in (headers or {}).items() if v is not None}
    try:
        resp = client(verify).request(method, url, headers=hdrs, timeout=timeout,
                                      auth=basic, **parts)
    except httpx.TimeoutException as exc:
        raise ToolError(f"{method} {scrub(url, services)} timed out after {timeout} s",
                        type(exc).__name__) from None
    except httpx.HTTPError as exc:
        raise ToolError(f"{method} {scrub(url, services)} failed: "
                        f"{scrub(str(exc), services)}", type(exc).__name__) from None
    result = {"status_code": resp.status_code, "headers": dict(resp.headers),
              "url": scrub(str(resp.url), services), "elapsed": resp.elapsed.total_seconds(),
              "data": parse_body(resp)}
    return resp, result


def run(call: ToolCall) -> Any:
    a = call.action
    url = a.get("endpoint") or a.get("url")
    if not url:
        raise ToolError("http step has no 'endpoint'", "ValueError")
    method = str(a.get("method") or "GET").upper()
    headers = dict(a.get("headers") or {})
    res = resolve_auth(auth_of(a, {}), call.services)
    if isinstance(res, dict):
        res = next(iter(res.values()), None)
    extra, basic = auth_headers(res)
    headers.update(extra)
    timeout = float(call.timeout or a.get("timeout") or DEFAULT_TIMEOUT)
    verify = a.get("verify", True) not in (False, "false", "False", 0)
    parts = _request_parts(a, call.args, method)
    resp, result = request(str(url), method, headers, timeout, verify, call.services, basic,
                           **parts)
    if not resp.is_success:
        return {"status": "error", "data": result,
                "error": f"HTTP {resp.status_code} {resp.reason_phrase} from {method} "
                         f"{result['url']}"}
    return result
