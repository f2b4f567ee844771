from __future__ import annotations

from zhkh.core.errors import Conflict, InvalidInput, NotFound


class MeterNotFound(NotFound):
    pass


class DeviceNotFound(NotFound):
    pass


class DeviceModelNotFound(NotFound):
    pass


class ReadingNotFound(NotFound):
    pass


class QuarantineNotFound(NotFound):
    pass


class InvalidMapping(InvalidInput):
    pass


class MeterArchived(Conflict):
    pass


class CorrectionRefused(InvalidInput):
    pass


class OutsideReadingWindow(InvalidInput):
    pass


class TooManyReadings(InvalidInput):
    status_code = 413
