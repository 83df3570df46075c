"""Admin of the commission side, one module per area."""

from . import booking, periods  # noqa: F401
