"""Shared foundations: settings, database, errors, money, files, outbox."""
