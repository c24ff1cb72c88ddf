"""InfoNCE over the global batch of a multi-process (DDP) run: every rank computes the same loss.

Each rank embeds its own examples; predicted and target embeddings are all-gathered with gradients
(distributed.gather_rows), so every row is contrasted against the whole global batch, as one process with
the global batch would. Answer texts are gathered too, so same-answer exclusion numbers the global batch.
Hard negatives: the distinct negative texts of the global batch (sorted, as make_batch does) are split into
equal chunks, each rank embeds one chunk, and the chunks are gathered with gradients: every negative is
embedded once, and the loss equals the one-process loss on the same examples.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .distributed import DistributedContext, gather_objects, gather_rows
from .loss import answer_group_ids, answer_group_keys, info_nce
from .vljepa import VLJepa


class ContrastiveForward(nn.Module):
    """Predicted, target and hard-negative embeddings in one forward, so DDP sees every use of the weights."""

    def __init__(self, model: VLJepa) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values, query_ids, query_mask, text_ids, text_mask, negative_ids=None,
                negative_mask=None):
        pred, target = self.model(pixel_values, query_ids, query_mask, text_ids, text_mask)
        negatives = None if negative_ids is None else self.model.encode_text(negative_ids, negative_mask)
        return pred, target, negatives


def negative_chunk(negatives: list[str], context: DistributedContext) -> list[str]:
    """This rank's equal-length chunk of the global negatives, padded with negatives[0] (dropped after gathering)."""
    size = math.ceil(len(negatives) / context.world_size)
    chunk = negatives[context.rank * size:(context.rank + 1) * size]
    return chunk + [negatives[0]] * (size - len(chunk))


class GlobalBatchLoss:
    """loss(examples of this rank) -> the InfoNCE of the global batch; the model is wrapped in DDP."""

    def __init__(self, model: VLJepa, context: DistributedContext, hard_negatives: bool = True) -> None:
        self.model, self.context, self.hard_negatives = model, context, hard_negatives
        device_ids = [context.local_rank] if context.backend == "nccl" else None
        self.forward = DistributedDataParallel(ContrastiveForward(model), device_ids=device_ids)

    def __call__(self, examples: Sequence) -> torch.Tensor:
        model, device = self.model, self.model.device
        answers = [e.answer for e in examples]
        local_negatives = sorted({text for e in examples for text in getattr(e, "negatives", ())})
        per_rank = gather_objects([answer_group_keys(examples), local_negatives if self.hard_negatives else []],
                                  self.context)
        global_keys = [key for rank_keys, _ in per_rank for key in rank_keys]
        negatives = sorted({text for _, rank_negatives in per_rank for text in rank_negatives})
        groups = answer_group_ids(global_keys + negatives).to(device)

        query_ids, query_mask = model.query_tokenizer([e.query for e in examples])
        text_ids, text_mask = model.text_tokenizer(answers)
        negative_ids = negative_mask = None
        if negatives:
            negative_ids, negative_mask = model.text_tokenizer(negative_chunk(negatives, self.context))
            negative_ids, negative_mask = negative_ids.to(device), negative_mask.to(device)
        pred, target, negative_rows = self.forward(
            model.prepare_clips([e.frames for e in examples]), query_ids.to(device), query_mask.to(device),
            text_ids.to(device), text_mask.to(device), negative_ids, negative_mask)
        count = len(global_keys)
        hard = gather_rows(negative_rows, self.context)[:len(negatives)] if negatives else None
        return info_nce(gather_rows(pred, self.context), gather_rows(target, self.context),
                        model.config.temperature, answer_groups=groups[:count], hard_negatives=hard,
                        hard_negative_groups=groups[count:])
