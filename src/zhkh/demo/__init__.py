"""The demo town: one command that shows the whole product working on the embedded database."""
