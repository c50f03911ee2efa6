"""The training steps of one phase: a plain torch loop.

Why not transformers' Trainer or trl's SFTTrainer: a smoke run is a few dozen steps, and what it needs is
exactly what those hide: a time budget checked between steps, assistant-only labels we compute ourselves
(trl's assistant mask needs `{% generation %}` markers this model's template lacks), and evaluation on our
own schedule. The loop is AdamW + gradient clipping over the trainable (LoRA) parameters; nothing else
to configure, and no accelerate/datasets start-up cost on every run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from labtax.train.encode import collate
from labtax.train.evaluate import answer_nll


@dataclass
class LoopResult:
    steps: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stopped_at_budget: bool = False


def make_optimizer(model, lr: float):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=0.0)


def run_steps(model, optimizer, batches, steps: int, pad_id: int, deadline: float | None, on_step=None) -> LoopResult:
    """Up to `steps` optimizer steps; stops cleanly between steps once `deadline` (monotonic) has passed."""
    import torch

    result = LoopResult()
    started = time.monotonic()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    model.train()
    try:
        for step in range(steps):
            if deadline is not None and time.monotonic() >= deadline:
                result.stopped_at_budget = True
                break
            batch = collate(next(batches), pad_id)
            nll, _ = answer_nll(model, batch)
            loss = nll.mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            result.steps += 1
            result.losses.append(float(loss.detach()))
            if on_step:
                on_step(step + 1, steps, result.losses[-1])
    finally:
        model.eval()
        result.seconds = time.monotonic() - started
    return result
