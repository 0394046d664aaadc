"""Imported at startup by every Python process that has this directory on ``PYTHONPATH``
(:mod:`bench.load_statements` starts the server and workers so): with
``NOETL_BENCH_SQLCOUNT`` set, count that process's SQL and engine calls
(:func:`bench.loadcount.install`)."""

import os

if os.environ.get("NOETL_BENCH_SQLCOUNT"):
    from bench.loadcount import install

    install(os.environ["NOETL_BENCH_SQLCOUNT"])
