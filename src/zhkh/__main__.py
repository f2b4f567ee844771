"""``python -m zhkh`` is the same as the ``zhkh`` command."""

from zhkh.cli.main import main

main()
