-- What steps wrote (stdout, stderr, logging records), one row per record, apart from the event
-- log. log_id orders an execution's records (the `since` cursor of GET .../logs); rows are
-- written under the execution's event lock, so they get their ids in commit order.
CREATE TABLE IF NOT EXISTS step_log (
    log_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id BIGINT NOT NULL,
    step TEXT NOT NULL,
    idx INTEGER,
    run INTEGER,
    attempt INTEGER,
    job_id BIGINT,
    stream TEXT NOT NULL,
    level TEXT NOT NULL,
    logger TEXT,
    message TEXT NOT NULL,
    worker_id TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS step_log_execution ON step_log (execution_id, log_id);
