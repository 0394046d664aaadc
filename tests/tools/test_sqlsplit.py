"""The SQL splitter: statements split on ``;`` only outside quotes, dollar quotes, comments."""

from __future__ import annotations

from noetl.tools.sqlsplit import first_keyword, split_sql


def test_split_respects_quotes_dollar_quotes_and_comments() -> None:
    sql = """
    -- leading comment; with a semicolon
    CREATE TABLE t (a text);  /* block; comment /* nested; */ still; */
    INSERT INTO t VALUES ('it''s; here'), (E'back\\'slash; x'), ("odd;name");
    CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
    DO $body$ BEGIN PERFORM 1; END $body$;
    SELECT $1, a::text FROM t;
    ;;  -- empty statements
    """
    out = split_sql(sql)
    assert len(out) == 5, out
    assert out[0].startswith("-- leading comment; with a semicolon\n")
    assert out[0].endswith("CREATE TABLE t (a text)")
    assert out[1].startswith("/* block; comment /* nested; */ still; */")
    assert "('it''s; here'), (E'back\\'slash; x'), (\"odd;name\")" in out[1]
    assert out[2] == "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql"
    assert out[3] == "DO $body$ BEGIN PERFORM 1; END $body$"
    assert out[4] == "SELECT $1, a::text FROM t"
    assert [first_keyword(s) for s in out] == ["CREATE", "INSERT", "CREATE", "DO", "SELECT"]


def test_single_statement_without_semicolon_and_comment_only() -> None:
    assert split_sql("select 1") == ["select 1"]
    assert split_sql("-- nothing\n/* here */") == []
    assert first_keyword("  /* x */ call p()") == "CALL"
