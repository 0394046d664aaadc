"""Execution engine: records events and reacts to them (orchestration), store-agnostic."""
