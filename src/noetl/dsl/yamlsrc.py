"""YAML loading that remembers where each mapping and key came from.

Mappings are loaded as :class:`LineDict`, a plain ``dict`` subclass carrying ``line`` (the
mapping's own first line) and ``key_lines`` (the line of each key). Errors can then name the line.
"""

from __future__ import annotations

from typing import Any

import yaml


class LineDict(dict[str, Any]):
    line: int | None = None
    key_lines: dict[str, int]
    code_line: int | None = None  # the YAML line of the first line of its `code` (see below)

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.key_lines = {}

    def line_of(self, key: str) -> int | None:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    line: int | None = None
    item_lines: list[int] | None = None


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: fast

# Bounds that keep a hostile file from hanging or exhausting the validator (issue 13).
MAX_DEPTH = 200  # nesting levels of mappings and sequences
MAX_NODES = 2_000_000  # nodes after alias expansion (a "billion laughs" file is refused)
MAX_BYTES = 20_000_000


class _Loader(_Base):  # type: ignore[misc]  # the base is picked at run time
    pass


class LimitError(yaml.YAMLError):
    """The document is too deep or too large after alias expansion."""

    def __init__(self, problem: str, line: int | None):
        super().__init__(problem)
        self.problem = problem
        self.line = line


_STR = "tag:yaml.org,2002:str"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    lines = out.key_lines
    for key_node, value_node in node.value:
        # a plain string (most keys and values) is its node's text: no constructor round trip
        if key_node.tag == _STR and type(key_node) is yaml.ScalarNode:
            skey = key_node.value
        else:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"unhashable mapping key {key!r}", key_node.start_mark
                )
            skey = key if isinstance(key, str) else str(key) if key is not None else "null"
        if value_node.tag == _STR and type(value_node) is yaml.ScalarNode:
            out[skey] = value_node.value
        else:
            out[skey] = loader.construct_object(value_node, deep=True)
        lines[skey] = key_node.start_mark.line + 1
        if skey == "code" and isinstance(value_node, yaml.ScalarNode):
            out.code_line = _code_line(value_node, out[skey])
    return out


def _code_line(node: yaml.ScalarNode, value: Any) -> int | None:
    """Where line 1 of a python ``code`` value is in the file, when its lines are the file's
    lines: a literal block (``code: |``) starts on the line after the ``|``; a one-line value
    is on its own line. Folded and multi-line quoted values have no such mapping (None)."""
    if node.style == "|":
        return node.start_mark.line + 2
    if isinstance(value, str) and "\n" not in value.rstrip("\n"):
        return node.start_mark.line + 1
    return None


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    out = LineList(loader.construct_object(n, deep=True) for n in node.value)
    out.line = node.start_mark.line + 1
    out.item_lines = [n.start_mark.line + 1 for n in node.value]
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _mark(ev: Any) -> int | None:
    return ev.start_mark.line + 1 if ev.start_mark is not None else None


_OPEN, _CLOSE, _LEAF, _ALIAS = 1, 2, 3, 4
_KINDS = {yaml.MappingStartEvent: _OPEN, yaml.SequenceStartEvent: _OPEN,
          yaml.MappingEndEvent: _CLOSE, yaml.SequenceEndEvent: _CLOSE,
          yaml.ScalarEvent: _LEAF, yaml.AliasEvent: _ALIAS}


def check_limits(text: str) -> None:
    """One pass over the event stream (no recursion, no expansion): refuse documents nested
    deeper than MAX_DEPTH or larger than MAX_NODES once aliases are expanded."""
    if len(text) > MAX_BYTES:
        raise LimitError(f"file larger than {MAX_BYTES:,} bytes", None)
    sizes: dict[str, int] = {}
    counts = [0]  # expanded node count per open collection
    anchors: list[str | None] = [None]
    kinds = _KINDS
    ev: Any  # events with an anchor (the union's members all have one when used)
    for ev in yaml.parse(text, Loader=_Base):
        kind = kinds.get(type(ev))
        if kind is None:
            continue
        if kind == _LEAF:
            counts[-1] += 1
            if ev.anchor:
                sizes[ev.anchor] = 1
            continue  # a leaf adds one: the total is checked when its collection ends
        if kind == _OPEN:
            if len(counts) > MAX_DEPTH:
                raise LimitError(f"nested more than {MAX_DEPTH} levels deep", _mark(ev))
            counts.append(1)
            anchors.append(ev.anchor)
            continue
        if kind == _CLOSE:
            count, anchor = counts.pop(), anchors.pop()
            if anchor:
                sizes[anchor] = count
            counts[-1] += count
        else:
            counts[-1] += sizes.get(ev.anchor or "", 1)
        if counts[-1] > MAX_NODES:
            raise LimitError(f"more than {MAX_NODES:,} values once YAML aliases are expanded "
                             "(an alias bomb?)", _mark(ev))


def load_yaml(text: str) -> Any:
    """Parse one YAML document keeping line numbers. Raises ``yaml.YAMLError`` on bad syntax
    and :class:`LimitError` on a document too deep or too large."""
    check_limits(text)
    return yaml.load(text, Loader=_Loader)


_SCALARS = frozenset({str, int, float, bool, type(None)})


def plain(value: Any) -> Any:
    """Deep-convert LineDict/LineList into plain dicts and lists (for JSON and storage)."""
    t = type(value)
    if t in _SCALARS:
        return value
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _SCALARS else plain(v) for v in value]
    return value
