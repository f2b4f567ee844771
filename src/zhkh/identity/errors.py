from __future__ import annotations

from zhkh.core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


class UnknownScope(InvalidInput):
    pass


class TokenNameTaken(Conflict):
    pass


class TokenNotFound(NotFound):
    pass


class InvalidToken(Unauthorized):
    pass


class MissingScope(Forbidden):
    pass
