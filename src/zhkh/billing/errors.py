"""Errors of billing, named after the condition."""

from __future__ import annotations

from zhkh.core.errors import Conflict


class PeriodClosed(Conflict):
    """The period is closed: its lines are final; changes go to the next open period."""


class PeriodOutOfOrder(Conflict):
    """A period cannot be run or closed before an earlier one is (or after a later one is closed)."""


class PeriodNotClosed(Conflict):
    """Bills are issued for closed periods only: an open period's lines are a draft."""
