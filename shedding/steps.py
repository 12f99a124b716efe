"""OpenLTH-style training-length strings: ``40ep``, ``500it``, ``10ep20it``.

Numbers are ASCII digits, with no spaces inside the string (spaces around it are ignored). Equal
lengths written differently (``05ep``, ``5ep``, ``5ep0it``) have one normal form, :func:`normalise`,
which is what a configuration's hash sees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATTERN = re.compile(r"(?:([0-9]+)ep)?(?:([0-9]+)it)?", re.ASCII)


class StepError(ValueError):
    """A malformed step string."""


@dataclass(frozen=True)
class Step:
    """A training length in epochs plus iterations; resolved to iterations with
    ``iterations_per_epoch``."""

    ep: int = 0
    it: int = 0

    @classmethod
    def parse(cls, text: str) -> Step:
        """Parse ``'40ep'``, ``'500it'`` or ``'10ep20it'``; raise :class:`StepError` otherwise."""
        m = _PATTERN.fullmatch(str(text).strip())
        if not m or (m.group(1) is None and m.group(2) is None):
            raise StepError(
                f"bad step string {text!r}: expected forms like '40ep', '500it' or '10ep20it' "
                "(ASCII digits, no spaces inside)"
            )
        return cls(int(m.group(1) or 0), int(m.group(2) or 0))

    def iterations(self, iterations_per_epoch: int) -> int:
        """Total number of optimizer steps this length stands for."""
        return self.ep * iterations_per_epoch + self.it

    def __str__(self) -> str:
        if self.ep and self.it:
            return f"{self.ep}ep{self.it}it"
        return f"{self.ep}ep" if self.ep or not self.it else f"{self.it}it"


def normalise(text: str) -> str:
    """The normal form of a step string: ``' 05ep0it'`` -> ``'5ep'``, ``'0it'`` -> ``'0ep'``."""
    return str(Step.parse(text))


def to_iterations(text: str, iterations_per_epoch: int) -> int:
    """Shortcut: ``Step.parse(text).iterations(iterations_per_epoch)``."""
    return Step.parse(text).iterations(iterations_per_epoch)
