"""Webhooks through a real server on SQLite with an API token: each hook checks its own secret
(HMAC signature or bearer), not the API token; a bad signature or an unknown hook starts
nothing; a replayed delivery id starts one execution."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from noetl.triggers.hooks import sign
from tests.api.conftest import Running

TOKEN = "api-token-123"
ON_PUSH = """\
apiVersion: noetl.io/v1
kind: Playbook
metadata: {name: on-push}
workload: {repo: none, ref: none}
workflow:
  - step: start
    next: end
  - step: end
"""


def _total(c: httpx.Client) -> int:
    return int(c.get("/api/executions").json()["total"])


def _workload(c: httpx.Client, eid: str) -> dict[str, object]:
    items = c.get(f"/api/executions/{eid}/events").json()["items"]
    return dict(items[0]["context"]["workload"])


def test_hmac_hook(serve: Callable[..., Running], store_url: str) -> None:
    api = serve(store_url, token=TOKEN)
    admin = api.client(TOKEN)
    anon = api.client()
    assert admin.post("/api/catalog/register", json={"content": ON_PUSH}).status_code == 200
    spec = {"path": "on-push", "secret": "s3cr3t-hook",
            "args": {"repo": "{{ body.repository.name }}", "ref": "{{ body.ref }}"}}
    assert anon.put("/api/hooks/push", json=spec).status_code == 401  # management: API token
    r = admin.put("/api/hooks/push", json=spec)
    assert r.status_code == 200, r.text
    assert r.json()["credential"] == "hook.push" and r.json()["url"] == "/api/hooks/push"
    names = [x["name"] for x in admin.get("/api/credentials").json()["items"]]
    assert "hook.push" in names  # the secret is kept encrypted in the credential store

    body = json.dumps({"repository": {"name": "noetl"}, "ref": "main"}).encode()
    good = {"X-Noetl-Signature": sign("s3cr3t-hook", body), "Content-Type": "application/json"}
    before = _total(admin)
    for headers in ({}, {"X-Noetl-Signature": "sha256=" + "0" * 64},
                    {"X-Noetl-Signature": sign("wrong-secret", body)},
                    {"X-Noetl-Signature": sign("s3cr3t-hook", body + b" ")}):
        r = anon.post("/api/hooks/push", content=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
    assert anon.post("/api/hooks/nope", content=body, headers=good).status_code == 404
    assert _total(admin) == before  # nothing started

    r = anon.post("/api/hooks/push", content=body, headers=good)  # no API token needed
    assert r.status_code == 202, r.text
    eid = r.json()["execution_id"]
    assert _workload(admin, eid) == {"repo": "noetl", "ref": "main"}
    assert admin.get(f"/api/executions/{eid}/trigger").json()["trigger"] == {
        "kind": "hook", "hook": "push", "delivery_id": None}

    replay = {**good, "X-Noetl-Delivery": "delivery-42"}
    first = anon.post("/api/hooks/push", content=body, headers=replay)
    again = anon.post("/api/hooks/push", content=body, headers=replay)
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {**first.json(), "duplicate": True}
    assert first.json()["duplicate"] is False
    assert _total(admin) == before + 2  # the unsigned-delivery run and one for delivery-42

    r = anon.post("/api/hooks/push", content=b"not json", headers={
        "X-Noetl-Signature": sign("s3cr3t-hook", b"not json")})
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]
    assert anon.get("/api/hooks").status_code == 401 and anon.get("/api/hooks/push").status_code == 401
    assert admin.delete("/api/hooks/push").status_code == 200
    assert anon.post("/api/hooks/push", content=body, headers=good).status_code == 404


def test_bearer_hook_with_the_body_as_args(serve: Callable[..., Running],
                                           store_url: str) -> None:
    api = serve(store_url, token=TOKEN)
    admin = api.client(TOKEN)
    admin.post("/api/catalog/register", json={"content": ON_PUSH})
    admin.post("/api/credentials", json={"name": "deploy-secret", "type": "webhook_secret",
                                         "data": {"secret": "bearer-secret-1"}})
    r = admin.put("/api/hooks/deploy", json={"path": "on-push", "auth": "bearer",
                                             "credential": "deploy-secret",
                                             "delivery_header": "X-GitHub-Delivery"})
    assert r.status_code == 200, r.text
    payload = {"repo": "x", "ref": "v1"}
    wrong = httpx.post(api.url + "/api/hooks/deploy", json=payload,
                       headers={"Authorization": f"Bearer {TOKEN}"})  # the API token is not it
    assert wrong.status_code == 401
    ok = {"Authorization": "Bearer bearer-secret-1", "X-GitHub-Delivery": "gh-1"}
    r1 = httpx.post(api.url + "/api/hooks/deploy", json=payload, headers=ok)
    r2 = httpx.post(api.url + "/api/hooks/deploy", json=payload, headers=ok)
    assert (r1.status_code, r2.status_code) == (202, 200)
    assert r1.json()["execution_id"] == r2.json()["execution_id"]
    assert _workload(admin, r1.json()["execution_id"]) == payload
    r = httpx.post(api.url + "/api/hooks/deploy", json=[1, 2], headers={
        "Authorization": "Bearer bearer-secret-1"})
    assert r.status_code == 400 and "JSON object" in r.json()["detail"]
    assert admin.put("/api/hooks/x", json={"path": "on-push"}).status_code == 400
    assert admin.put("/api/hooks/x", json={"path": "nope", "secret": "12345678"}).status_code \
        == 404
    r = admin.put("/api/hooks/x", json={"path": "on-push", "secret": "12345678", "auth": "sig"})
    assert r.status_code == 400 and "hmac, bearer" in r.json()["detail"]
