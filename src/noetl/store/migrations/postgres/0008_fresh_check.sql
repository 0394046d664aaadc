-- noetl_fresh(n): n, or an error (SQLSTATE NT001) when n is 0. A speculative report's single
-- statement (noetl.store.pg_unit) updates the execution row and the reported job's row only
-- where they are still the versions it read earlier (xmin), and ends by calling this with the
-- count of rows so updated: a row someone changed meanwhile fails the statement, and with it
-- the transaction, whose report then runs again reading afresh.
CREATE OR REPLACE FUNCTION noetl_fresh(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$ BEGIN IF n = 0 THEN RAISE EXCEPTION 'noetl: the rows a speculative report read have changed' USING ERRCODE = 'NT001'; END IF; RETURN n; END $$;
