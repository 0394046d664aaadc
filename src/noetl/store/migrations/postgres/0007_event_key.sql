-- seq loses its own index (the primary key): nothing looks an event up by seq alone. Readers
-- page one execution's events by (execution_id, seq) (event_execution) and find one by
-- event_id (UNIQUE NOT NULL, the table's key in all but name; also its replica identity now);
-- seq stays unique (an identity column) and ordered. Every event written maintained three
-- indexes; now two (embedded seq40 writes five events a step). Dropping builds nothing.
ALTER TABLE event DROP CONSTRAINT IF EXISTS event_pkey;
ALTER TABLE event REPLICA IDENTITY USING INDEX event_event_id_key;
