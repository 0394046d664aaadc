-- Workers register and heartbeat: one row per worker pool (a `noetl worker start` process, the
-- pool inside `noetl server start`, or the pool of a `noetl run`). A worker is alive while its
-- last heartbeat is younger than its lease time; `status` is 'running' until it stops cleanly.
CREATE TABLE IF NOT EXISTS worker (
    worker_id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    mode TEXT NOT NULL,
    hostname TEXT,
    pid INTEGER,
    concurrency INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    jobs_done BIGINT NOT NULL DEFAULT 0,
    lease_seconds DOUBLE PRECISION NOT NULL,
    status TEXT NOT NULL,
    meta TEXT,
    started_at DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL,
    stopped_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS worker_last_seen ON worker (last_seen);
