"""The one list of step types: every tool's name, where its code is, the keys it accepts and
what each means, which of them are not templates, and which of its errors are never retried.

Everything that needs to know a tool reads it from here:

- the DSL (:mod:`noetl.dsl.model` ``STEP_TYPES`` / ``TOOL_KEYS``, :mod:`noetl.dsl.loader`'s
  key checks and their did-you-mean, :mod:`noetl.dsl.deep`'s template checks),
- the JSON Schema (:mod:`noetl.dsl.schema`, the step properties with their descriptions),
- the plan compiler (:mod:`noetl.plan.compiler`: the keys whose names are not step references),
- the worker (:mod:`noetl.worker.runner`: the keys it leaves unrendered, whether the tool keeps
  its own timeout, which error types end the step at once),
- the registry (:mod:`noetl.tools.registry`: ``module:function`` of each built-in tool).

Adding a tool is its module under ``noetl/tools/`` plus one :class:`ToolSpec` in :data:`TOOLS`
(CONTRIBUTING.md). The spec is data only: this module imports nothing of the package, so the
lowest layer that needs it (the DSL) may import it.

Step types that are not tools are engine constructs (:data:`ENGINE_STEPS`): ``workbook`` (a
call of a named task), ``playbook`` (a child execution), ``iterator`` (a loop) and the routers
``router`` and ``end``. The engine runs them itself; no worker tool exists for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

# What a key's value may be (JSON Schema type names). A string holding a template (``{{``)
# is accepted for every key whatever its kinds: it is rendered at run time.
Kind = str  # "string" | "array" | "object" | "number" | "integer" | "boolean"


@dataclass(frozen=True)
class Key:
    """One key a step of a type may carry: what it means, and (optionally) what it may be."""

    desc: str
    kinds: tuple[Kind, ...] = ()  # empty: not checked (the tool says)
    minimum: float | None = None  # numbers: bounds checked by the loader
    maximum: float | None = None


@dataclass(frozen=True)
class ToolSpec:
    """One step type the worker runs with a tool."""

    name: str
    summary: str
    # "module:function" of the tool (a ``noetl.tools.base.Tool``). None: the DSL knows the
    # type but no built-in tool runs it: such a step fails with ``UnknownTool`` on a worker that
    # has not registered one (``noetl.tools.registry.register_tool``).
    target: str | None
    keys: Mapping[str, Key] = field(default_factory=lambda: MappingProxyType({}))
    # keys left as written (not rendered as templates, no step references): code, not text
    unrendered: frozenset[str] = frozenset()
    # (any of these keys, the message when none is given)
    requires: tuple[frozenset[str], str] | None = None
    params: bool = False  # takes a bound ``params`` mapping of identifiers (SQL parameters)
    # unknown keys on a step of this type are errors (with did-you-mean from :attr:`keys`),
    # not warnings; older types keep warnings, since NoETL playbooks carry extra keys
    strict: bool = False
    own_timeout: bool = False  # the tool enforces the step's ``timeout`` itself (kills its process)
    # error types (``ToolError.error_type``) that end the step at once, whatever its retry
    # policy says: retrying cannot help. A tool may also raise ToolError(retryable=False).
    non_retryable: frozenset[str] = frozenset()
    extra: str | None = None  # the optional dependency it needs: ``pip install 'noetl[extra]'``

    @property
    def key_names(self) -> frozenset[str]:
        return frozenset(self.keys)


def _keys(**keys: Key | str) -> Mapping[str, Key]:
    return MappingProxyType({k: v if isinstance(v, Key) else Key(v) for k, v in keys.items()})


_SQL = {"command": "the SQL to run (a template); several statements run one by one",
        "commands": "alias of command", "command_b64": "command, base64-encoded",
        "commands_b64": "commands, base64-encoded", "query": "alias of command",
        "sql": "alias of command"}
_SQL_PARAMS = Key("bound parameters: a mapping of identifiers to values (or a template)")
_CHUNK = Key("rows per chunk (each chunk one transaction)", ("integer",), 1, 1_000_000)
_NOETL_ONLY = "accepted for NoETL playbooks; not used here"

SAVE_STEP_KEYS = frozenset({"storage", "data", "table", "mode", "key", "keys", "statement",
                            "params", "auth", "credential", "commands", "sql", "code", "script",
                            "endpoint", "url", "method", "headers", "database", "format"})

TOOLS: Mapping[str, ToolSpec] = MappingProxyType({s.name: s for s in (
    ToolSpec("python", "run the function main() that `code` defines", "noetl.tools.python:run",
             _keys(code="python source defining main(); its parameters are filled from args",
                   code_b64="code, base64-encoded",
                   isolate="run in a child process (true/false)"),
             unrendered=frozenset({"code", "code_b64"}),
             requires=(frozenset({"code", "code_b64"}), "a python step needs 'code' defining main()"),
             own_timeout=True),
    ToolSpec("http", "one HTTP request; the response is the result", "noetl.tools.http:run",
             _keys(endpoint="the URL (a template)", url="alias of endpoint",
                   method="GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS (default GET)",
                   headers="request headers (a mapping)", params="query parameters (a mapping)",
                   json="the JSON body", body="the body (text is sent as is)",
                   verify="verify the server's TLS certificate (default true)")),
    ToolSpec("postgres", "SQL on PostgreSQL", "noetl.tools.postgres:run",
             _keys(**_SQL, db_host="host", db_port="port", db_user="user",
                   db_password="password", db_name="database name",
                   db_conn_string="a libpq connection string", params=_SQL_PARAMS),
             params=True, own_timeout=True, extra="postgres"),
    ToolSpec("duckdb", "SQL on DuckDB (in memory, or a database file)", "noetl.tools.duckdb:run",
             _keys(**_SQL, database="the database file (default: in memory)",
                   db_type=_NOETL_ONLY, require_cloud_output=_NOETL_ONLY,
                   auto_secrets=_NOETL_ONLY, params=_SQL_PARAMS),
             params=True, own_timeout=True, extra="duckdb"),
    ToolSpec("secrets", "resolve a secret (a NoETL credential or an environment variable)",
             "noetl.tools.secrets:run",
             _keys(provider="noetl (a stored credential, the default) or env",
                   secret_name="the credential or variable name",
                   project_id=_NOETL_ONLY + " (google provider)",
                   version=_NOETL_ONLY + " (google provider)")),
    ToolSpec("transfer", "copy records from an HTTP source into a PostgreSQL table",
             "noetl.tools.transfer:run",
             _keys(source="the source: {type: http, url, …}", target="the target: "
                   "{type: postgres, table, mode, key, mapping, …}",
                   chunk_size=_CHUNK, mapping="target column → source field path",
                   mode="the target's save mode"),
             extra="postgres"),
    ToolSpec("snowflake", "SQL on Snowflake (no built-in tool)", None,
             _keys(**{k: v for k, v in _SQL.items() if "command" in k})),
    ToolSpec("snowflake_transfer", "Snowflake ↔ PostgreSQL transfer (no built-in tool)", None,
             _keys(direction="sf_to_pg or pg_to_sf", source="the source", target="the target",
                   chunk_size=_CHUNK, mode="the target's save mode")),
    ToolSpec("save", "no action: the step's own keys are a save run on its input",
             "noetl.tools.save:run_step",
             _keys(**{k: "the save's " + k for k in sorted(SAVE_STEP_KEYS - {
                 "data", "auth", "credential"})})),
    ToolSpec("shell", "run a command; its output goes to the step's log", "noetl.tools.shell:run",
             _keys(command=Key("a string (run by /bin/sh -c) or a list (program and arguments, "
                               "no shell)", ("string", "array")),
                   env=Key("variables added to the command's environment", ("object",)),
                   cwd=Key("the directory the command runs in", ("string",))),
             requires=(frozenset({"command"}), "a shell step needs 'command'"), strict=True,
             own_timeout=True, non_retryable=frozenset({"ShellError"})),
    ToolSpec("noop", "no action (a router; with a save, the save runs on its input)",
             "noetl.tools.noop:run"),
)})

# Step types the engine runs itself (not tools), with the keys each accepts.
ENGINE_STEPS: Mapping[str, Mapping[str, Key]] = MappingProxyType({
    "workbook": _keys(),  # `name` (a common key) names the workbook task
    "playbook": _keys(path="the child playbook's catalog path", version="its version",
                      return_step="the child step whose result is the step's result",
                      content="an inline child playbook (YAML text or a mapping)",
                      resource_path="alias of path", playbook_path="alias of path"),
    "iterator": _keys(collection="the list (a template) to loop over",
                      element="the loop variable's name", mode="sequential or async",
                      concurrency="items running at once (async; 1 to 10,000)",
                      where="keep items for which this template is true",
                      order_by="sort items by this template", limit="at most this many items",
                      chunk="items per job", enumerate="number the items",
                      iterator="alias of element"),
    "router": _keys(),
    "end": _keys(),
})

# The storages a `save` may name: kind → "module:function" (noetl.tools.save runs them).
SAVE_STORAGES: Mapping[str, str] = MappingProxyType({
    "event": "noetl.tools.save:save_event",
    "event_log": "noetl.tools.save:save_event",
    "postgres": "noetl.tools.save_storage:save_postgres",
    "duckdb": "noetl.tools.save_storage:save_duckdb",
    "http": "noetl.tools.save_storage:save_http",
    "python": "noetl.tools.save_storage:save_python",
})

# Keys of a step the worker never renders, whatever its type (the engine's, or rendered
# separately: args with the edge's values, save after the action).
ENGINE_UNRENDERED = frozenset({"next", "save", "retry", "task", "type", "tool", "step", "desc",
                               "description", "assert", "args", "with", "input", "payload"})


def spec(name: str | None) -> ToolSpec | None:
    """The spec of tool ``name`` (None for an engine construct or an unknown type)."""
    return TOOLS.get(name) if name is not None else None


def step_keys(name: str) -> frozenset[str]:
    """The keys of its own a step of type ``name`` accepts (beyond the common keys)."""
    s = TOOLS.get(name)
    if s is not None:
        return s.key_names
    return frozenset(ENGINE_STEPS.get(name, {}))


def unrendered(name: str | None) -> frozenset[str]:
    """The keys of a ``name`` step's action the worker leaves as written."""
    return _UNRENDERED.get(name, ENGINE_UNRENDERED) if name is not None else ENGINE_UNRENDERED


_UNRENDERED = {n: ENGINE_UNRENDERED | s.unrendered for n, s in TOOLS.items()}


def all_unrendered() -> frozenset[str]:
    """Every tool's unrendered keys (the template checker skips them on any step)."""
    out: frozenset[str] = frozenset()
    for s in TOOLS.values():
        out |= s.unrendered
    return out


def builtin_targets() -> dict[str, str]:
    """Tool name → ``module:function`` of every built-in tool (the registry's table)."""
    return {n: s.target for n, s in TOOLS.items() if s.target is not None}
