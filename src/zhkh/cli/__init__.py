"""The ``zhkh`` command line: one file per command group."""
