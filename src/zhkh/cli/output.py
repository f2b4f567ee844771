"""How the command line talks: Rich on stdout for results, one plain line on stderr per error.

Markup is off: the text printed is full of what users typed (addresses, names, token names), and
"[/b]" in a building code must print as itself, not be taken for a style.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

console = Console(highlight=False, soft_wrap=True, markup=False)  # a result line stays one line
errors = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def fail(message: str) -> None:
    errors.print(Text.assemble(("error:", "bold red"), " ", message))


def bold(text: str) -> Text:
    return Text(text, style="bold")
