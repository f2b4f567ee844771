"""How the command line talks: Rich on stdout for results, one plain line on stderr per error."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)  # a result line stays one line, whatever the width
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> None:
    errors.print(f"[bold red]error:[/] {message}", markup=True)
