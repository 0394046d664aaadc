"""``python -m noetl`` is the ``noetl`` command."""

from noetl.cli.entry import main

main()
