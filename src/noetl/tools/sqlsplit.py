"""Split SQL text into statements on ``;`` without breaking quoted text.

Aware of single quotes (``''`` escapes, ``E'..'`` backslash escapes), double-quoted identifiers,
dollar quotes (``$$ .. $$``, ``$tag$ .. $tag$``), ``--`` line comments and (nested) ``/* */``
block comments. Statements that are empty or only comments are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


def _quoted_end(sql: str, i: int, quote: str, escapes: bool) -> int:
    """End (exclusive) of the quoted text opening at ``i``: a doubled quote stays inside, and
    with ``escapes`` (an ``E'...'`` string) so does a backslash-escaped character."""
    n = len(sql)
    j = i + 1
    while j < n:
        if escapes and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            break
        j += 1
    return min(j + 1, n)


def _is_blank(stmt: str) -> bool:
    return not strip_comments(stmt).strip()


def strip_comments(sql: str) -> str:
    """The text with comments removed (quoted text left untouched)."""
    out: list[str] = []
    for kind, text in _tokens(sql):
        if kind != "comment":
            out.append(text)
    return "".join(out)


def _tokens(sql: str) -> list[tuple[str, str]]:
    """Lex into (kind, text) runs: ``code``, ``quoted``, ``comment``, ``semi``."""
    toks: list[tuple[str, str]] = []
    i, n = 0, len(sql)
    start = 0

    def flush(upto: int) -> None:
        if upto > start:
            toks.append(("code", sql[start:upto]))

    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            flush(i)
            j = sql.find("\n", i)
            j = n if j < 0 else j
            toks.append(("comment", sql[i:j]))
            i = start = j
        elif c == "/" and sql.startswith("/*", i):
            flush(i)
            depth, j = 1, i + 2
            while j < n and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            toks.append(("comment", sql[i:j]))
            i = start = j
        elif c in "'\"":
            escapes = c == "'" and i > 0 and sql[i - 1] in "eE" and (
                i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            flush(i)
            j = _quoted_end(sql, i, c, escapes)
            toks.append(("quoted", sql[i:j]))
            i = start = j
        elif c == "$" and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            m = _DOLLAR_TAG.match(sql, i)
            if m is None:
                i += 1
                continue
            flush(i)
            tag = m.group(0)
            end = sql.find(tag, m.end())
            j = n if end < 0 else end + len(tag)
            toks.append(("quoted", sql[i:j]))
            i = start = j
        elif c == ";":
            flush(i)
            toks.append(("semi", ";"))
            i = start = i + 1
        else:
            i += 1
    flush(n)
    return toks


def split_sql(sql: str) -> list[str]:
    """Statements in order, trimmed, without the trailing ``;``."""
    stmts: list[str] = []
    cur: list[str] = []
    for kind, text in _tokens(sql):
        if kind == "semi":
            stmts.append("".join(cur))
            cur = []
        else:
            cur.append(text)
    stmts.append("".join(cur))
    return [s.strip() for s in stmts if not _is_blank(s)]


def map_code(sql: str, fn: Callable[[str], str]) -> str:
    """The text with ``fn`` applied to its code runs only (quoted text and comments kept)."""
    return "".join(fn(text) if kind == "code" else text for kind, text in _tokens(sql))


def first_keyword(stmt: str) -> str:
    """The statement's first word, upper-cased (comments skipped)."""
    words = strip_comments(stmt).split(None, 1)
    return words[0].upper().rstrip(";(") if words else ""
