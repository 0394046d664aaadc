"""Raw-bytes request handling for the hot routes (the queue's lease and report, the run of a
playbook): the body is decoded by orjson and checked by its pydantic model (the same rules,
and the same 422 naming the field, as FastAPI's validation gives), the answer encoded by
orjson, the blocking part run in a thread of the server's pool (:func:`in_thread`).
FastAPI's body handling and its response encoding (``jsonable_encoder`` over every answer)
are skipped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from noetl.api.deps import state
from noetl.templates import dumpb, loadb

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def _json_type(content_type: str) -> bool:
    """``application/json`` or ``application/<anything>+json`` (FastAPI's rule)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/")
                                           and kind.endswith("+json"))


async def body(request: Request, model: type[M]) -> tuple[Any, M]:
    """The request's JSON body (orjson) and ``model`` checked over it; a 422 naming the field
    (``body.<field>``), as FastAPI answers, when it does not hold. A body of another content
    type is not read as JSON (422, as FastAPI answers): a browser sends ``text/plain`` and
    form posts to any origin without asking first, so a page elsewhere cannot start runs."""
    content_type = request.headers.get("content-type")
    if content_type and not _json_type(content_type):
        raise RequestValidationError([{
            "loc": ("body",), "type": "model_attributes_type",
            "msg": "Input should be a valid dictionary or object to extract fields from"}])
    raw = await request.body()
    try:
        data = loadb(raw) if raw else None
    except ValueError as exc:
        raise RequestValidationError([{"loc": ("body",), "msg": f"JSON decode error: {exc}",
                                       "type": "json_invalid"}]) from None
    if data is None:
        raise RequestValidationError([{"loc": ("body",), "msg": "Field required",
                                       "type": "missing"}])
    try:
        return data, model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError([{"loc": ("body", *e["loc"]), "msg": e["msg"],
                                       "type": e["type"]} for e in exc.errors()]) from None


async def in_thread(request: Request, fn: Callable[[], T]) -> T:
    """The blocking part (the engine, the database) off the event loop, in the app's thread
    pool (``ApiState.threads``) through asyncio's own hand-off: a third less CPU per call
    than anyio's ``to_thread`` (its cancel scope, capacity limiter and per-call checks),
    which FastAPI uses for a plain ``def`` route. A call the client gave up on still runs to
    its end, as there (a report is recorded; the worker sends it again under the same
    ``report_id``)."""
    return await asyncio.get_running_loop().run_in_executor(state(request).threads, fn)


def json(value: Any) -> Response:
    return Response(dumpb(value), media_type="application/json")


def doc(model: type[BaseModel], answer: dict[str, Any]) -> dict[str, Any]:
    """A raw route's OpenAPI entry: ``model`` is its body, ``answer`` the schema of its 200."""
    return {
        "openapi_extra": {"requestBody": {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}},
        "responses": {200: {"description": "Successful Response",
                            "content": {"application/json": {"schema": answer}}}},
        "response_class": Response,
    }


def answer_schema(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}
