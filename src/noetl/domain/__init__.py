"""The domain: the rows the engine keeps and the store persists, and their lifecycle.

Pure data and rules, no I/O. Every layer that needs rows or statuses imports this package
(``store`` below the engine, the engine, the API); it imports nothing of NoETL but
:mod:`noetl.errors`.

- :mod:`noetl.domain.records`: row types (execution, step state, event, job, catalog entry,
  credential).
"""
