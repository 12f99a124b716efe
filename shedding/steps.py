"""OpenLTH-style training-length strings: ``40ep``, ``500it``, ``10ep20it``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERN = re.compile(r"^\s*(?:(\d+)ep)?\s*(?:(\d+)it)?\s*$")


class StepError(ValueError):
    """A malformed step string."""


@dataclass(frozen=True)
class Step:
    """A training length in epochs plus iterations; resolved to iterations with ``iterations_per_epoch``."""

    ep: int = 0
    it: int = 0

    @classmethod
    def parse(cls, text: str) -> Step:
        """Parse ``'40ep'``, ``'500it'`` or ``'10ep20it'``; raise :class:`StepError` otherwise."""
        m = _PATTERN.match(str(text))
        if not m or (m.group(1) is None and m.group(2) is None):
            raise StepError(f"bad step string {text!r}: expected forms like '40ep', '500it' or '10ep20it'")
        return cls(int(m.group(1) or 0), int(m.group(2) or 0))

    def iterations(self, iterations_per_epoch: int) -> int:
        """Total number of optimizer steps this length stands for."""
        return self.ep * iterations_per_epoch + self.it

    def __str__(self) -> str:
        if self.ep and self.it:
            return f"{self.ep}ep{self.it}it"
        return f"{self.ep}ep" if self.ep or not self.it else f"{self.it}it"


def to_iterations(text: str, iterations_per_epoch: int) -> int:
    """Shortcut: ``Step.parse(text).iterations(iterations_per_epoch)``."""
    return Step.parse(text).iterations(iterations_per_epoch)
