-- What steps wrote (stdout, stderr, logging records), one row per record, apart from the event
-- log. log_id orders an execution's records (the `since` cursor of GET .../logs).
CREATE TABLE IF NOT EXISTS step_log (
    log_id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    idx INTEGER,
    run INTEGER,
    attempt INTEGER,
    job_id INTEGER,
    stream TEXT NOT NULL,
    level TEXT NOT NULL,
    logger TEXT,
    message TEXT NOT NULL,
    worker_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS step_log_execution ON step_log (execution_id, log_id);
