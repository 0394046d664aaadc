-- NoETL schema, version 1 (PostgreSQL), in schema noetl (search_path is set per connection).
-- Mirrors migrations/sqlite/0001_init.sql column for column; JSON columns hold JSON text so
-- both backends return identical values.
CREATE TABLE IF NOT EXISTS catalog (
    catalog_id BIGINT PRIMARY KEY,
    path TEXT NOT NULL,
    version INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'Playbook',
    content TEXT NOT NULL,
    payload TEXT NOT NULL,
    meta TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (path, version)
);
CREATE TABLE IF NOT EXISTS execution (
    execution_id BIGINT PRIMARY KEY,
    catalog_id BIGINT,
    path TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    playbook TEXT NOT NULL,
    workload TEXT NOT NULL,
    parent_execution_id BIGINT,
    parent_job_id BIGINT,
    result TEXT,
    error TEXT,
    state TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    ended_at DOUBLE PRECISION,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS execution_status ON execution (status, execution_id);
CREATE INDEX IF NOT EXISTS execution_path ON execution (path, execution_id);
CREATE INDEX IF NOT EXISTS execution_parent ON execution (parent_execution_id);
CREATE TABLE IF NOT EXISTS step_state (
    execution_id BIGINT NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0,
    started_at DOUBLE PRECISION,
    ended_at DOUBLE PRECISION,
    loop TEXT,
    arrivals TEXT,
    input TEXT,
    has_result INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, step)
);
CREATE TABLE IF NOT EXISTS event (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id BIGINT NOT NULL UNIQUE,
    execution_id BIGINT NOT NULL,
    parent_event_id BIGINT,
    event_type TEXT NOT NULL,
    status TEXT NOT NULL,
    node_name TEXT,
    node_type TEXT,
    context TEXT,
    result TEXT,
    error TEXT,
    error_type TEXT,
    stack_trace TEXT,
    meta TEXT,
    attempt INTEGER,
    current_index INTEGER,
    duration DOUBLE PRECISION,
    worker_id TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS event_execution ON event (execution_id, seq);
CREATE TABLE IF NOT EXISTS queue (
    queue_id BIGINT PRIMARY KEY,
    execution_id BIGINT NOT NULL,
    step TEXT NOT NULL,
    run INTEGER NOT NULL,
    kind TEXT NOT NULL,
    idx INTEGER,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    available_at DOUBLE PRECISION NOT NULL,
    lease_until DOUBLE PRECISION,
    worker_id TEXT,
    last_heartbeat DOUBLE PRECISION,
    result TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
-- Partial indexes: a lease walks only live candidates in order (an index scan also marks the
-- entries of rows that moved on as dead, which a bitmap scan over (status, ...) never does).
CREATE INDEX IF NOT EXISTS queue_ready ON queue (priority DESC, queue_id) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS queue_available ON queue (available_at) WHERE status = 'queued';
CREATE INDEX IF NOT EXISTS queue_lease ON queue (lease_until) WHERE status = 'leased';
CREATE INDEX IF NOT EXISTS queue_execution ON queue (execution_id, step, run, status, idx);
CREATE TABLE IF NOT EXISTS credential (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    data_encrypted TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
