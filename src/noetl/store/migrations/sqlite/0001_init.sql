-- NoETL schema, version 1 (SQLite). JSON columns hold JSON text.
CREATE TABLE IF NOT EXISTS catalog (
    catalog_id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    version INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'Playbook',
    content TEXT NOT NULL,
    payload TEXT NOT NULL,
    meta TEXT,
    created_at REAL NOT NULL,
    UNIQUE (path, version)
);
CREATE TABLE IF NOT EXISTS execution (
    execution_id INTEGER PRIMARY KEY,
    catalog_id INTEGER,
    path TEXT NOT NULL,
    version TEXT,
    status TEXT NOT NULL,
    playbook TEXT NOT NULL,
    workload TEXT NOT NULL,
    parent_execution_id INTEGER,
    parent_job_id INTEGER,
    result TEXT,
    error TEXT,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS execution_status ON execution (status, execution_id);
CREATE INDEX IF NOT EXISTS execution_path ON execution (path, execution_id);
CREATE INDEX IF NOT EXISTS execution_parent ON execution (parent_execution_id);
CREATE TABLE IF NOT EXISTS step_state (
    execution_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 0,
    started_at REAL,
    ended_at REAL,
    loop TEXT,
    arrivals TEXT,
    input TEXT,
    has_result INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (execution_id, step)
);
CREATE TABLE IF NOT EXISTS event (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id INTEGER NOT NULL UNIQUE,
    execution_id INTEGER NOT NULL,
    parent_event_id INTEGER,
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
    duration REAL,
    worker_id TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS event_execution ON event (execution_id, seq);
CREATE TABLE IF NOT EXISTS queue (
    queue_id INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL,
    step TEXT NOT NULL,
    run INTEGER NOT NULL,
    kind TEXT NOT NULL,
    idx INTEGER,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 1,
    available_at REAL NOT NULL,
    lease_until REAL,
    worker_id TEXT,
    last_heartbeat REAL,
    result TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (status, priority DESC, queue_id);
CREATE INDEX IF NOT EXISTS queue_lease ON queue (status, lease_until);
CREATE INDEX IF NOT EXISTS queue_execution ON queue (execution_id, step, run, status, idx);
CREATE TABLE IF NOT EXISTS credential (
    name TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    data_encrypted TEXT NOT NULL,
    description TEXT,
    tags TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
