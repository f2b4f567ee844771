"""The housing registry: organisations, buildings, premises, personal accounts and owners."""
