"""Rounds (002, section 2.5): stream the training split in cached slices, each trained to patience.

002 loads 300,000 training jets at a time (a *round*), trains on it until the
validation loss has not improved for 10 epochs, then moves to the next
round; after the last round the rounds are used again ("sweeps"). Here a
round is a TFDS slice of the split (``train[0:300000]``); because the
builders write splits in stratified order every round holds the classes in
their overall proportions. :class:`RoundSchedule` is the plan and its
position; its :meth:`~RoundSchedule.state_dict` is JSON, saved with the
trainer's checkpoints, so an interrupted run resumes in the same round and
epoch with the same patience counter.

Typical use::

    schedule = RoundSchedule.from_info(info, round_size=300_000, patience=10, sweeps=3)
    schedule.load_state_dict(saved)           # when resuming
    while not schedule.done:
        ds = schedule.dataset(info, batch_size=4096, inputs=("image", "global_features"))
        model.fit(ds, epochs=1, validation_data=val)
        schedule.end_epoch(val_loss)         # advances to the next round at patience
        save(schedule.state_dict())
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator, List, Optional

__all__ = ["Round", "RoundSchedule"]


@dataclasses.dataclass(frozen=True)
class Round:
    """One stretch of the schedule.

    Attributes:
        position: index in the whole schedule (0 .. len - 1).
        index: which slice of the split (0 .. n_rounds - 1).
        sweep: which pass over the rounds (0 .. sweeps - 1).
        split: the TFDS split string of the slice.
        n_examples: jets in it.
    """

    position: int
    index: int
    sweep: int
    split: str
    n_examples: int

    @property
    def name(self) -> str:
        return f"round {self.index + 1} (sweep {self.sweep + 1})"


class RoundSchedule:
    """Rounds of ``round_size`` jets over ``split``, each trained to ``patience``, repeated ``sweeps`` times.

    The split is cut into ``ceil(n / round_size)`` slices of equal size (to within
    one jet), each at most ``round_size``.

    Args:
        n_examples: jets in ``split``.
        round_size: most jets per round (002: 300,000).
        patience: epochs without a new best validation loss that end a round (002: 10).
        sweeps: passes over all rounds.
        split: a plain split name (``"train"``).
        max_epochs_per_round: upper bound on epochs in one round (None: no bound).
    """

    def __init__(self, n_examples: int, round_size: int = 300_000, patience: int = 10, sweeps: int = 1,
                 split: str = "train", max_epochs_per_round: Optional[int] = None):
        if n_examples < 1:
            raise ValueError(f"RoundSchedule: split {split!r} is empty")
        if round_size < 1 or patience < 1 or sweeps < 1:
            raise ValueError(f"RoundSchedule: round_size, patience and sweeps must be >= 1, got "
                             f"{round_size}, {patience}, {sweeps}")
        if "[" in split or "+" in split:
            raise ValueError(f"RoundSchedule: split must be a plain split name, got {split!r}")
        self.n_examples, self.round_size, self.patience = int(n_examples), int(round_size), int(patience)
        self.sweeps, self.split = int(sweeps), split
        self.max_epochs_per_round = max_epochs_per_round
        self.n_rounds = math.ceil(self.n_examples / self.round_size)
        edges = [(i * self.n_examples) // self.n_rounds for i in range(self.n_rounds + 1)]
        self.rounds: List[Round] = [
            Round(s * self.n_rounds + i, i, s, f"{split}[{edges[i]}:{edges[i + 1]}]", edges[i + 1] - edges[i])
            for s in range(self.sweeps) for i in range(self.n_rounds)
        ]
        self.position = 0
        self.epoch_in_round = 0
        self.epochs = 0
        self.best = math.inf
        self.wait = 0
        self.history: List[dict] = []

    @classmethod
    def from_info(cls, info, split: str = "train", **kwargs) -> "RoundSchedule":
        """The schedule over a built dataset's split (``info``: :class:`JetDatasetInfo`)."""
        return cls(info.num_examples(split), split=split, **kwargs)

    # ---------------------------------------------------------------- state
    def __len__(self) -> int:
        return len(self.rounds)

    @property
    def done(self) -> bool:
        return self.position >= len(self.rounds)

    def current(self) -> Round:
        if self.done:
            raise IndexError("RoundSchedule: all rounds are done")
        return self.rounds[self.position]

    def __iter__(self) -> Iterator[Round]:
        """The rounds from the current position on."""
        return iter(self.rounds[self.position:])

    def end_epoch(self, val_loss: float) -> bool:
        """Record an epoch of the current round; returns True when that round is finished.

        A round ends when the validation loss has not improved (by more than 1e-7)
        for ``patience`` epochs in that round, or after ``max_epochs_per_round``.
        """
        round_ = self.current()
        val_loss = float(val_loss)
        self.epoch_in_round += 1
        self.epochs += 1
        if val_loss < self.best - 1e-7:
            self.best, self.wait = val_loss, 0
        else:
            self.wait += 1
        finished = self.wait >= self.patience or (
            self.max_epochs_per_round is not None and self.epoch_in_round >= self.max_epochs_per_round)
        if finished:
            self.history.append({"position": round_.position, "epochs": self.epoch_in_round, "best": self.best})
            self.advance()
        return finished

    def advance(self) -> None:
        """Move to the next round; the patience counter restarts (the best loss is per round)."""
        self.position += 1
        self.epoch_in_round, self.wait, self.best = 0, 0, math.inf

    def state_dict(self) -> dict:
        """JSON-able position and patience state (with the plan, to check on resume)."""
        return {
            "plan": {"n_examples": self.n_examples, "round_size": self.round_size, "patience": self.patience,
                     "sweeps": self.sweeps, "split": self.split, "max_epochs_per_round": self.max_epochs_per_round},
            "position": self.position,
            "epoch_in_round": self.epoch_in_round,
            "epochs": self.epochs,
            "best": None if math.isinf(self.best) else self.best,
            "wait": self.wait,
            "history": list(self.history),
        }

    def load_state_dict(self, state: dict) -> None:
        """Resume from :meth:`state_dict`; the plan must be the same."""
        plan = self.state_dict()["plan"]
        if state.get("plan") != plan:
            raise ValueError(f"RoundSchedule.load_state_dict: saved plan {state.get('plan')} differs from this "
                             f"schedule's {plan}")
        self.position = int(state["position"])
        self.epoch_in_round = int(state["epoch_in_round"])
        self.epochs = int(state["epochs"])
        self.best = math.inf if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.history = list(state.get("history", []))

    # -------------------------------------------------------------- dataset
    def dataset(self, info, round_: Optional[Round] = None, **kwargs):
        """The current (or given) round's training dataset, cached in memory after its first pass.

        ``kwargs`` go to :func:`jettf.data.make_dataset` (batch_size, inputs, densify, seed, ...).
        """
        from jettf.data.pipeline import make_dataset

        round_ = round_ or self.current()
        kwargs.setdefault("cache", True)
        kwargs.setdefault("training", True)
        kwargs.setdefault("seed", round_.position)
        return make_dataset(info, round_.split, **kwargs)

    def __repr__(self) -> str:
        return (f"RoundSchedule({self.n_rounds} rounds of <= {self.round_size} jets x {self.sweeps} sweeps, "
                f"patience {self.patience}, at {self.position}/{len(self.rounds)})")
