"""Notifications: who wants to hear about what, and delivery by e-mail, SMS and in-app, from the
outbox, with retries and without duplicate sends."""
