"""The API checks Host and Origin (issue 13, item 7: DNS rebinding). A page a browser
loaded from ``evil.example`` that rebinds the name to 127.0.0.1 reaches the server from
loopback, but its requests carry ``Host: evil.example`` (and, cross-origin, an ``Origin``):
credential data, and every other API request, is refused to them. Real ``noetl server start`` subprocesses."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.distributed.conftest import base_env

SECRET = {"user": "u", "password": "pw-0123456789"}


def _read(url: str, headers: dict[str, str] | None = None, data: bool = True) -> httpx.Response:
    return httpx.get(url + "/api/credentials/c", timeout=10, headers=headers or {},
                     params={"include_data": "true"} if data else None)


def _put(url: str, token: str | None = None, host: str | None = None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if host:
        headers["Host"] = host
    httpx.post(url + "/api/credentials", json={"name": "c", "type": "basic", "data": SECRET},
               headers=headers, timeout=10).raise_for_status()


def test_without_a_token_only_loopback_names_get_credential_data(
        server_proc: Callable[..., str]) -> None:
    url = server_proc()
    port = urlsplit(url).port
    _put(url)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost", f"[::1]:{port}"):
        r = _read(url, {"Host": host})
        assert r.status_code == 200 and r.json()["data"] == SECRET, (host, r.text)
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
        r = _read(url, {"Host": host})
        assert r.status_code == 403, (host, r.status_code, r.text)
        assert "not an allowed host" in r.json()["detail"]
        assert SECRET["password"] not in r.text
    # a cross-origin request from a page on another name, even with a loopback Host
    r = _read(url, {"Origin": "http://evil.example"})
    assert r.status_code == 403 and "Origin 'http://evil.example'" in r.json()["detail"]
    assert _read(url, {"Origin": "null"}).status_code == 403
    assert _read(url, {"Origin": f"http://localhost:{port}"}).status_code == 200
    # nor anything else the API serves, to such a name
    r = _read(url, {"Host": "evil.example"}, data=False)
    assert r.status_code == 403 and r.json()["error"] == "host"
    r = _read(url, {"Host": "localhost"}, data=False)
    assert r.status_code == 200 and "data" not in r.json()


PB = ("apiVersion: noetl.io/v1\nkind: Playbook\nmetadata: {name: h, path: t/hosts}\n"
      "workflow:\n  - step: start\n    type: noop\n")


def test_without_a_token_a_rebinding_page_cannot_run_a_playbook(
        server_proc: Callable[..., str]) -> None:
    """Running a playbook is running code: the whole API, not only credential data, answers
    only to the allowed names (and origins), so a page on another name gets nothing done."""
    url = server_proc()
    port = urlsplit(url).port
    c = httpx.Client(base_url=url, timeout=10)
    c.post("/api/catalog/register", json={"content": PB}).raise_for_status()
    evil = [{"Host": f"evil.example:{port}"},
            {"Origin": "http://evil.example"},  # cross-origin, loopback Host
            {"Host": "evil.example", "Content-Type": "text/plain"}]  # a "simple" request
    for headers in evil:
        r = c.post("/api/run/playbook", json={"path": "t/hosts"}, headers=headers)
        assert r.status_code == 403, (headers, r.status_code, r.text)
        assert "NOETL_ALLOWED_HOSTS" in r.json()["detail"]
        r = c.post("/api/queue/lease", json={"worker_id": "w", "limit": 1}, headers=headers)
        assert r.status_code == 403, (headers, r.text)  # the hot routes too
        assert c.get("/api/executions", headers=headers).status_code == 403
        assert c.get("/metrics", headers=headers).status_code == 403
    assert c.get("/api/executions").json()["items"] == []  # nothing ran
    assert c.get("/health", headers=evil[0]).status_code == 200  # liveness: any name
    ok = c.post("/api/run/playbook", json={"path": "t/hosts"},
                headers={"Origin": f"http://localhost:{port}"})  # the UI, same origin
    assert ok.status_code == 200, ok.text


def test_allowed_hosts_are_configurable(server_proc: Callable[..., str]) -> None:
    url = server_proc({"NOETL_ALLOWED_HOSTS": "noetl.internal, 10.1.2.3"})
    _put(url, host="noetl.internal")
    assert _read(url, {"Host": "noetl.internal:8082"}).json()["data"] == SECRET
    assert _read(url, {"Host": "10.1.2.3"}).status_code == 200
    r = _read(url)  # Host: 127.0.0.1:PORT is no longer one of them
    assert r.status_code == 403 and "noetl.internal" in r.json()["detail"]
    # a worker addressing the server by a configured name
    r = httpx.post(url + "/api/queue/lease", json={"worker_id": "w", "limit": 1},
                   headers={"Host": "noetl.internal"}, timeout=10)
    assert r.status_code == 200 and r.json()["jobs"] == []


def test_with_a_token_the_token_is_the_guard(server_proc: Callable[..., str]) -> None:
    token = "tok-hosts-0123456789"
    url = server_proc({"NOETL_API_TOKEN": token})
    _put(url, token)
    auth = {"Authorization": f"Bearer {token}"}
    # a worker reaching the server by any name it is known by
    assert _read(url, {**auth, "Host": "server1.internal:8082"}).json()["data"] == SECRET
    assert _read(url, {"Host": "127.0.0.1"}).status_code == 401  # never without the token
    # with NOETL_ALLOWED_HOSTS set, the names are checked as well
    url2 = server_proc({"NOETL_API_TOKEN": token, "NOETL_ALLOWED_HOSTS": "server1.internal"},
                       store=None)
    assert _read(url2, {**auth, "Host": "server1.internal"}).json()["data"] == SECRET
    r = _read(url2, {**auth, "Host": "evil.example"})
    assert r.status_code == 403 and "not an allowed host" in r.text


def test_a_worker_refused_for_its_host_name_says_which_setting(
        server_proc: Callable[..., str], tmp_path: Path) -> None:
    url = server_proc({"NOETL_ALLOWED_HOSTS": "noetl.internal"})
    p = subprocess.run([sys.executable, "-m", "noetl", "worker", "start", "--server", url],
                       env=base_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "refused this worker" in p.stderr and "127.0.0.1" in p.stderr
    assert "NOETL_ALLOWED_HOSTS must name the host" in p.stderr
