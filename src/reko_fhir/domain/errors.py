"""The one exception the domain raises: an invariant broken, naming the field it concerns."""

from __future__ import annotations


class DomainError(ValueError):
    """An invariant of the coordination domain does not hold.

    ``field`` names the attribute (dotted for nested ones) so that callers can point at the
    source field or FHIR element that carried the bad value.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def within(self, prefix: str) -> DomainError:
        """The same error with its field placed under ``prefix`` (``period`` → ``case.period``)."""
        return DomainError(f"{prefix}.{self.field}" if self.field else prefix, self.message)
