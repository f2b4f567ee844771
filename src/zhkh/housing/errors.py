from __future__ import annotations

from zhkh.core.errors import NotFound


class BuildingNotFound(NotFound):
    pass


class AccountNotFound(NotFound):
    pass
