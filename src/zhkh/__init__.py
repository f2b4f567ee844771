"""zhkh: an open platform for housing and communal services (ЖКХ)."""

__version__ = "0.1.0"
