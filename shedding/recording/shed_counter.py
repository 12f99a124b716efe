"""Per-step shed and recover crossings, counted per layer on the training device (SCIENCE.md section 4).

At a prune event with line L = alpha * tau, a survivor is *eligible* when |w| >= L; survivors already
below L are counted separately (``below``) and never as shed. After each step, an eligible weight is
*shed* while |w| < L; a crossing down is a shed event, a crossing back up a recover event.
"""

from __future__ import annotations

import torch


class ShedCounter:
    """Holds the eligible set and the previous below-line state of one event, over a flat weight vector."""

    def __init__(self, layer_ids: torch.Tensor, n_layers: int) -> None:
        self.layer_ids = layer_ids  # (n_weights,) int64 on the device
        self.n_layers = n_layers
        self.line = 0.0
        self.eligible: torch.Tensor | None = None
        self.prev_below: torch.Tensor | None = None

    def _per_layer(self, flags: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n_layers, dtype=torch.int64, device=flags.device)
        return out.index_add_(0, self.layer_ids, flags.to(torch.int64))

    def start(self, magnitude: torch.Tensor, alive: torch.Tensor, line: float | torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Begin an event from the post-prune magnitudes; return per-layer (survivors, eligible, below).

        ``line`` is one value or one per weight (a per-layer line broadcast over the layer's weights).
        """
        self.line = line
        alive = alive.bool()
        self.eligible = alive & (magnitude >= line)
        self.prev_below = torch.zeros_like(self.eligible)
        below = alive & ~self.eligible
        return self._per_layer(alive), self._per_layer(self.eligible), self._per_layer(below)

    def update(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Counts after a step: a (3, n_layers) tensor of shed level, shed events and recover events."""
        assert self.eligible is not None and self.prev_below is not None
        below = self.eligible & (magnitude < self.line)
        down = below & ~self.prev_below
        up = self.prev_below & ~below
        self.prev_below = below
        flags = torch.stack([below, down, up]).to(torch.int32)  # one reduction for the three counts
        out = torch.zeros(3, self.n_layers, dtype=torch.int32, device=flags.device)
        return out.index_add_(1, self.layer_ids, flags).to(torch.int64)

    def state_dict(self) -> dict:
        """The event's eligible set, the previous below-line state and the line, on the CPU (for resume)."""
        return {k: (v.cpu() if isinstance(v, torch.Tensor) else v)
                for k, v in (("eligible", self.eligible), ("prev_below", self.prev_below), ("line", self.line))}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        """Restore :meth:`state_dict` onto ``device``."""
        moved = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
        self.eligible, self.prev_below, self.line = moved["eligible"], moved["prev_below"], moved["line"]
