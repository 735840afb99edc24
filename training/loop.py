"""The training loop, resumable: a run that stops (``--stop-after``, a killed process, a
machine taken back) continues from its last checkpoint when the same command runs again.
A finished run's checkpoint stays, so that its command run again after a later stage
failed (export, tuning) skips the training.

A checkpoint holds the model, the optimiser and the learning-rate schedule, the step
reached, the seconds trained and torch's random state (dropout), and the options that
shape the run. The examples and the order of the batches are not saved: they follow from
the seed, so a resumed run draws the same ones and skips the steps already taken; resumed
or not, a run ends with the same weights.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.data import Example

log = logging.getLogger("training")


class OptionsChanged(SystemExit):
    """A checkpoint was saved by a run with other options: resuming would mix two runs."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a run saves itself every ``every`` steps, and the options it must match."""

    path: Path
    options: dict[str, Any]
    every: int = 200

    def save(self, model: Any, opt: Any, sched: Any, step: int, seconds: float) -> None:
        import torch

        state = {
            "options": self.options,
            "step": step,
            "seconds": seconds,
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "schedule": sched.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        torch.save(state, partial)
        os.replace(partial, self.path)  # a run killed while saving keeps the previous one

    def restore(self, model: Any, opt: Any, sched: Any) -> tuple[int, float]:
        """``(step, seconds)`` reached by the saved run, ``(0, 0.0)`` when there is none."""
        import torch

        if not self.path.exists():
            return 0, 0.0
        state = torch.load(self.path, map_location=next(model.parameters()).device)
        if state["options"] != self.options:
            differ = sorted(
                k
                for k in {*state["options"], *self.options}
                if state["options"].get(k) != self.options.get(k)
            )
            raise OptionsChanged(
                f"{self.path} was saved by a run with other {', '.join(differ)}: run the "
                "same command to continue it, or delete the file to start over"
            )
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        log.info("resuming at step %d of a run saved in %s", state["step"], self.path)
        return int(state["step"]), float(state["seconds"])


@dataclass(frozen=True)
class Finished:
    """How a call of `fit` ended: every step taken, or stopped early (checkpoint saved)."""

    step: int
    steps: int
    seconds: float

    @property
    def done(self) -> bool:
        return self.step == self.steps


def fit(
    model: Any,
    losses: Callable[[Sequence[Example]], Any],
    epochs: list[list[Example]],
    batches: Callable[[list[Example], random.Random], list[list[Example]]],
    rng: random.Random,
    lr: float,
    schedule: int,
    checkpoint: Checkpoint | None = None,
    stop: Callable[[int], bool] = lambda step: False,
) -> Finished:
    """Train ``model`` on ``epochs`` with AdamW, linear warm-up over the first sixteenth of
    ``schedule`` steps and linear decay to zero at ``schedule``, clipping gradients at norm
    1. ``losses(batch)`` is one batch's loss; ``batches(items, rng)`` orders an epoch (how
    many batches does not depend on ``rng``). ``stop(step)`` is asked after each step: true
    saves the checkpoint and returns early."""
    import torch

    steps = sum(len(batches(items, random.Random(0))) for items in epochs)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, schedule // 16)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (schedule - s) / max(1, schedule - warm)))
    )
    start, before = checkpoint.restore(model, opt, sched) if checkpoint else (0, 0.0)
    step, started = 0, time.time()

    def seconds() -> float:
        return before + time.time() - started

    for epoch, items in enumerate(epochs):
        model.train()
        for batch in batches(items, rng):  # drawn even when skipped: rng stays in step
            step += 1
            if step <= start:
                continue
            loss = losses(batch)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if step % 50 == 0:
                rate = (step - start) / (time.time() - started)
                left = math.ceil((steps - step) / rate / 60)
                log.info(
                    "epoch %d step %d/%d loss %.4f (%.2f steps/s, %d min left)",
                    *(epoch + 1, step, steps, loss.item(), rate, left),
                )
            if checkpoint and step < steps:
                stopping = stop(step)
                if stopping or step % checkpoint.every == 0:
                    checkpoint.save(model, opt, sched, step, seconds())
                if stopping:
                    return Finished(step, steps, seconds())
    if checkpoint and start < steps:  # kept: the same command then only exports again
        checkpoint.save(model, opt, sched, steps, seconds())
    return Finished(steps, steps, seconds())
