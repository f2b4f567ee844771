"""The ``DomainError`` family and the problem records of bulk jobs.

A ``DomainError`` is a condition a user can act on; it carries the HTTP status the API answers
with and a message that says what went wrong, where and why. The class name is the error code
(``{"error": "PeriodClosed", "detail": "..."}``), so subclasses are named after the condition.
"""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    status_code: int = 400

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code

    @property
    def code(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, str]:
        return {"error": self.code, "detail": self.message}


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class InvalidInput(DomainError):
    status_code = 400


class Unauthorized(DomainError):
    status_code = 401


class Forbidden(DomainError):
    status_code = 403


@dataclass(frozen=True, slots=True)
class Problem:
    """One bad row of a bulk job: where (``row``, a 1-based line number), a stable ``code`` and
    a human ``message``."""

    row: int | None
    code: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.row}: " if self.row is not None else ""
        return f"{where}{self.message}"


class ProblemsFound(DomainError):
    """An all-or-nothing job found bad rows; nothing was written."""

    status_code = 422

    def __init__(self, problems: list[Problem], what: str = "input") -> None:
        self.problems = sorted(problems, key=lambda p: (p.row is None, p.row or 0))
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{what}: {count} {noun} found, nothing was written")
