"""The ``noetl`` command line."""
