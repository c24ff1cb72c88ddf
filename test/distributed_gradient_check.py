"""torchrun target of test_distributed_training.py: one global-batch InfoNCE backward under DDP.

    torchrun --nproc_per_node 2 test/distributed_gradient_check.py OUT.pt

Each rank takes its slice of distributed_examples(), computes GlobalBatchLoss and backpropagates (DDP averages
the gradients); rank 0 saves the loss and every parameter's gradient to OUT.pt.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_model_training import ANSWERS, tiny_examples  # noqa: E402

from vljepa_ros.model.config import get_preset  # noqa: E402
from vljepa_ros.model.distributed import init_distributed, shutdown  # noqa: E402
from vljepa_ros.model.global_loss import GlobalBatchLoss  # noqa: E402
from vljepa_ros.model.vljepa import new_model  # noqa: E402

CORPUS = ANSWERS + ["What is happening?", "the arm waves"]


def distributed_examples(count: int = 8):
    """Examples with hard negatives, some shared across what become different ranks' slices."""
    examples = tiny_examples(count)
    for index, example in enumerate(examples):
        example.negatives = (ANSWERS[(index + 1) % 4], "the arm waves")
    return examples


def tiny_model():
    torch.manual_seed(0)
    return new_model(get_preset("tiny"), CORPUS)


def backward_once(context, out: str) -> None:
    model = tiny_model().train()
    examples = distributed_examples()
    per_rank = len(examples) // context.world_size
    global_loss = GlobalBatchLoss(model, context)  # kept alive through backward: its DDP reducer averages
    loss = global_loss(examples[context.rank * per_rank:(context.rank + 1) * per_rank])
    loss.backward()
    if context.is_main:
        grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
        torch.save({"loss": loss.item(), "grads": grads}, out)


def main(out: str) -> None:
    context = init_distributed("cpu")
    try:
        backward_once(context, out)  # returns before shutdown, so no DDP object outlives the process group
    finally:
        shutdown(context)


if __name__ == "__main__":
    main(sys.argv[1])
