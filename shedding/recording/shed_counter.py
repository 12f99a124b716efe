"""Per-step shed and recover crossings, counted per layer on the training device
(docs/science.md#shedding).

At a prune event with line L = alpha * tau, a survivor is *eligible* when |w| >= L; survivors
already below L are counted separately (``below``) and never as shed. After each step, an eligible
weight is *shed* while |w| < L; a crossing down is a shed event, a crossing back up a recover event.

Only eligible weights can be shed, so each step looks at them alone: their indices, fixed between
events, are gathered into preallocated buffers (layers stay contiguous, since the flat vector is
layer-ordered).
On the CPU one ``bincount`` over (layer, previous state, current state) keys gives all three counts;
on
CUDA a ``cumsum`` over layer segments does, without reading anything back to the host.
"""

from __future__ import annotations

import torch

from shedding.recording.reductions import key_counts, key_dtype, segment_sums


class ShedCounter:
    """Holds the eligible set and the previous below-line state of one event, over a flat weight
    vector."""

    def __init__(
        self, layer_ids: torch.Tensor, n_layers: int, sync_free: bool | None = None
    ) -> None:
        self.layer_ids = layer_ids  # (n_weights,) int64 on the device
        self.n_layers = n_layers
        self.sync_free = layer_ids.device.type == "cuda" if sync_free is None else sync_free
        self.line: float | torch.Tensor = 0.0  # one value, or one per weight
        self.eligible: torch.Tensor | None = None  # (n_weights,) bool

    def _per_layer(self, flags: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(self.n_layers, dtype=torch.int64, device=flags.device)
        return out.index_add_(0, self.layer_ids, flags.to(torch.int64))

    def _select(self, eligible: torch.Tensor, prev_below: torch.Tensor) -> None:
        """Index the eligible weights and allocate the per-step buffers (at an event, or on
        resume)."""
        self.eligible = eligible
        self.index = torch.nonzero(eligible).reshape(-1)
        layers = self.layer_ids[self.index]
        n = self.index.numel()
        self._line = self.line[self.index] if isinstance(self.line, torch.Tensor) else self.line
        self._mag = torch.empty(n, dtype=torch.float32, device=eligible.device)
        self._spare = torch.empty(
            n, dtype=torch.bool, device=eligible.device
        )  # the next step's state
        self._prev = prev_below[self.index].clone()
        if self.sync_free:  # segment bounds of each layer inside the eligible subset
            sizes = torch.bincount(layers, minlength=self.n_layers)
            self._bounds = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)])
        else:  # key = 4 * layer + 2 * previous + current
            dtype = key_dtype(4 * self.n_layers, sync_free=False)
            self._key_base = (layers * 4).to(dtype)
            self._key = torch.empty(n, dtype=dtype, device=eligible.device)

    def start(
        self, magnitude: torch.Tensor, alive: torch.Tensor, line: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Begin an event from the post-prune magnitudes; return per-layer (survivors, eligible,
        below).

        ``line`` is one value or one per weight (a per-layer line broadcast over the layer's
        weights).
        """
        self.line = line
        alive = alive.bool()
        eligible = alive & (magnitude >= line)
        self._select(eligible, torch.zeros_like(eligible))
        below = alive & ~eligible
        return self._per_layer(alive), self._per_layer(eligible), self._per_layer(below)

    def update(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Counts after a step: a (3, n_layers) int64 tensor of shed level, shed events and recover
        events."""
        assert self.eligible is not None
        mag = torch.index_select(magnitude, 0, self.index, out=self._mag)
        below = torch.lt(mag, self._line, out=self._spare)
        prev = self._prev
        if self.sync_free:
            flags = torch.stack([below, below & ~prev, prev & ~below], 1).to(torch.int32)
            out = segment_sums(flags, self._bounds).T
        else:
            key = torch.add(self._key_base, prev, alpha=2, out=self._key).add_(below)
            c = key_counts(key, 4 * self.n_layers, sync_free=False).view(self.n_layers, 4)
            out = torch.stack(
                [c[:, 1] + c[:, 3], c[:, 1], c[:, 2]]
            )  # (prev, now): (0,1) down, (1,0) up
        self._spare, self._prev = prev, below  # swap: this step's state is the next one's previous
        return out

    def below_now(self, magnitude: torch.Tensor) -> torch.Tensor:
        """Flat bool: the eligible weights below the line at ``magnitude``."""
        assert self.eligible is not None
        return self.eligible & (magnitude < self.line)

    def state_dict(self) -> dict:
        """The event's eligible set, the previous below-line state and the line, on the CPU (for
        resume)."""
        prev_below = None
        if self.eligible is not None:
            prev_below = torch.zeros_like(self.eligible)
            prev_below[self.index] = self._prev
            prev_below = prev_below.cpu()
        return {
            "eligible": None if self.eligible is None else self.eligible.cpu(),
            "prev_below": prev_below,
            "line": self.line.cpu() if isinstance(self.line, torch.Tensor) else self.line,
        }

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        """Restore :meth:`state_dict` onto ``device``."""
        line = state["line"]
        self.line = line.to(device) if isinstance(line, torch.Tensor) else line
        if state["eligible"] is None:
            self.eligible = None
            return
        self._select(state["eligible"].to(device), state["prev_below"].to(device))
