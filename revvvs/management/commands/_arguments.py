"""Checks of command arguments that go into text columns (not a command: the leading _)."""

from django.core.management.base import CommandError


def text_argument(value: str, *, model, field: str, flag: str) -> str:
    """`value` stripped, or CommandError when the column `model.field` cannot hold it."""
    value = value.strip()
    limit = model._meta.get_field(field).max_length
    if "\x00" in value:
        raise CommandError(f"{flag} must not contain a NUL character")
    if limit is not None and len(value) > limit:
        raise CommandError(f"{flag} is {len(value)} characters long; at most {limit}")
    return value
