-- Node ids for the in-process id generator: every process that opens the store takes the next
-- one, so ids made by many processes on one database never collide.
CREATE TABLE IF NOT EXISTS node_seq (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO node_seq (id, n) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
