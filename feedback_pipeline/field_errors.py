"""Errors about one field of a definition, carrying the field's path so a file reader can point at its line."""

from __future__ import annotations


class FieldError(ValueError):
    """A ValueError naming the field at fault: `field` is its dotted path in a definition (`type`,
    `input.options`, `trace_filter.sample.n`); the message says the value and what was expected."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
