-- Re-runs and resumes: which execution a new one was made from, how, with what overrides, and
-- (resume) which steps' results it reused.
CREATE TABLE IF NOT EXISTS execution_lineage (
    execution_id BIGINT PRIMARY KEY,
    source_execution_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    overrides TEXT,
    reused TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS execution_lineage_source
    ON execution_lineage (source_execution_id, execution_id);
