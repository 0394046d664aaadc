-- Schedules, webhook triggers and the notification outbox (SQLite). Mirrors
-- migrations/postgres/0006_schedules.sql column for column.
-- schedule: NoETL's table (playbook_path, playbook_version, cron, interval_seconds, enabled,
-- timezone, next_run_at, last_run_at, last_status, input_payload, meta), fired at last.
-- source 'playbook' rows come from the playbook's `schedule:` and are replaced when a new version
-- is registered; 'api' rows are managed through the API and CLI.
CREATE TABLE IF NOT EXISTS schedule (
    schedule_id INTEGER PRIMARY KEY,
    playbook_path TEXT NOT NULL,
    playbook_version TEXT,
    source TEXT NOT NULL,
    name TEXT,
    cron TEXT,
    interval_seconds REAL,
    timezone TEXT NOT NULL,
    input_payload TEXT,
    enabled INTEGER NOT NULL,
    catchup TEXT NOT NULL,
    overlap TEXT NOT NULL,
    next_run_at REAL,
    last_run_at REAL,
    last_status TEXT,
    last_execution_id INTEGER,
    meta TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS schedule_due ON schedule (next_run_at) WHERE enabled = 1;
CREATE INDEX IF NOT EXISTS schedule_path ON schedule (playbook_path);
-- One row per nominal fire time of a schedule: started, caught_up, skipped (overlap), missed
-- (a run of missed fires: detail {count, last}) or error. The primary key makes a second
-- start of the same nominal time impossible.
CREATE TABLE IF NOT EXISTS schedule_run (
    schedule_id INTEGER NOT NULL,
    nominal_at REAL NOT NULL,
    fired_at REAL NOT NULL,
    outcome TEXT NOT NULL,
    execution_id INTEGER,
    detail TEXT,
    PRIMARY KEY (schedule_id, nominal_at)
);
CREATE INDEX IF NOT EXISTS schedule_run_execution ON schedule_run (execution_id);
-- Webhooks: POST /api/hooks/{name} starts playbook_path with the body (or a mapping of it).
CREATE TABLE IF NOT EXISTS hook (
    name TEXT PRIMARY KEY,
    playbook_path TEXT NOT NULL,
    playbook_version TEXT,
    source TEXT NOT NULL,
    auth TEXT NOT NULL,
    credential TEXT NOT NULL,
    args TEXT,
    delivery_header TEXT,
    enabled INTEGER NOT NULL,
    meta TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hook_delivery (
    hook TEXT NOT NULL,
    delivery_id TEXT NOT NULL,
    execution_id INTEGER,
    received_at REAL NOT NULL,
    PRIMARY KEY (hook, delivery_id)
);
-- The notification outbox: written in the transaction that ends the execution, delivered by a
-- server with retries (each attempt an event on the execution).
CREATE TABLE IF NOT EXISTS notification (
    notification_id INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_due ON notification (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS notification_execution ON notification (execution_id);
