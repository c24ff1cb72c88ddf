"""Training loop of `vljepa-ros train`: (clip, query, answer) examples -> bidirectional InfoNCE.

Action examples carry their item's distractor actions as hard negatives (see loss.py).
AdamW with three parameter groups: X-encoder (only when config.freeze_x_encoder is False), predictor,
and Y-encoder at lr x config.y_encoder_lr_multiplier (paper 0.05 for the pretrained EmbeddingGemma; the
from-scratch small presets use 1.0). Linear warm-up then cosine decay. A checkpoint (the model
directory itself plus training_state/ with optimizer, scheduler and step) is written every
`checkpoint_every` steps and at the end; `resume=True` continues from it. Resumed runs draw fresh
data seeded by (seed, step), so they are deterministic but not bit-identical to an uninterrupted run.

Under torchrun (context.distributed) the model is wrapped in DDP and the loss runs over the global batch
(global_loss.py); rank 0 writes checkpoints and shows progress. The data source comes from the caller
(`vljepa-ros train` builds it from --data), so this module knows no world.
"""
from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tqdm import tqdm

from ..errors import CheckpointError
from .checkpoint import save_model
from .distributed import SINGLE_PROCESS, DistributedContext, barrier
from .global_loss import GlobalBatchLoss
from .loss import answer_group_ids, answer_group_keys, info_nce
from .vljepa import VLJepa

TRAINING_STATE_DIR = "training_state"


class ExampleLike(Protocol):
    frames: np.ndarray  # uint8 (T, H, W, 3)
    query: str
    answer: str
    # optional: negatives, a tuple of texts known to be wrong for this clip (hard negatives; see make_batch);
    # answer_class, the class label the answer paraphrases (loss.answer_group_keys)


class ExampleSource(Protocol):
    """Draws training examples. A source whose `per_rank` attribute is True (sharded data) already yields only
    this rank's examples; any other source is drawn identically on every rank, which takes its slice."""

    def batch(self, size: int) -> list[ExampleLike]: ...
    def reseed(self, seed: int) -> None: ...


class ListSource:
    """Uniform sampling (with reshuffling epochs) from examples held in memory, e.g. a saved .npz."""

    def __init__(self, examples: Sequence[ExampleLike], seed: int = 0) -> None:
        if len(examples) == 0:
            raise ValueError("the training set is empty")
        self.examples = list(examples)
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.order: list[int] = []

    def batch(self, size: int) -> list[ExampleLike]:
        picked = []
        while len(picked) < size:
            if not self.order:
                self.order = list(range(len(self.examples)))
                self.rng.shuffle(self.order)
            picked.append(self.examples[self.order.pop()])
        return picked


@dataclass
class TrainSettings:
    steps: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.05
    warmup_steps: int = 100
    min_lr_fraction: float = 0.05
    grad_clip: float = 1.0
    checkpoint_every: int = 200
    seed: int = 0
    progress: bool = True
    hard_negatives: bool = True  # use the examples' negatives as extra InfoNCE negatives (loss.py)


@dataclass
class TrainResult:
    steps_done: int
    start_step: int
    losses: list[float] = field(default_factory=list)
    wall_time_s: float = 0.0

    @property
    def final_loss(self) -> float:
        tail = self.losses[-50:]
        return float(np.mean(tail)) if tail else float("nan")


def make_batch(model: VLJepa, examples: Sequence[ExampleLike]) -> dict[str, torch.Tensor]:
    """Preprocess exactly as inference does (fill_clip + preprocess_frames) and tokenize.

    The batch's distinct hard negatives come back as negative_ids / negative_mask / negative_groups (empty
    tensors when no example has any); the group ids share one numbering with answer_groups.
    """
    pixels = model.prepare_clips([e.frames for e in examples])
    query_ids, query_mask = model.query_tokenizer([e.query for e in examples])
    answers = [e.answer for e in examples]
    negatives = sorted({text for e in examples for text in getattr(e, "negatives", ())})
    text_ids, text_mask = model.text_tokenizer(answers + negatives)
    groups = answer_group_ids(answer_group_keys(examples) + negatives)
    device = model.device
    count = len(answers)
    return {
        "pixel_values": pixels,
        "query_ids": query_ids.to(device),
        "query_mask": query_mask.to(device),
        "text_ids": text_ids[:count].to(device),
        "text_mask": text_mask[:count].to(device),
        "answer_groups": groups[:count].to(device),
        "negative_ids": text_ids[count:].to(device),
        "negative_mask": text_mask[count:].to(device),
        "negative_groups": groups[count:].to(device),
    }


def parameter_groups(model: VLJepa, settings: TrainSettings) -> list[dict]:
    """X-encoder (if trainable), predictor, Y-encoder (lr x multiplier); no weight decay on 1-D tensors."""
    groups = []
    parts = [("predictor", model.predictor, 1.0), ("y_encoder", model.y_encoder, model.config.y_encoder_lr_multiplier)]
    if not model.config.freeze_x_encoder:
        parts.insert(0, ("x_encoder", model.x_encoder, 1.0))
    for name, module, multiplier in parts:
        params = [p for p in module.parameters() if p.requires_grad]
        decay = [p for p in params if p.ndim >= 2]
        no_decay = [p for p in params if p.ndim < 2]
        lr = settings.learning_rate * multiplier
        groups.append({"name": f"{name}.decay", "params": decay, "lr": lr, "weight_decay": settings.weight_decay})
        groups.append({"name": f"{name}.no_decay", "params": no_decay, "lr": lr, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def lr_factor(step: int, settings: TrainSettings) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    progress = (step - settings.warmup_steps) / max(1, settings.steps - settings.warmup_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return settings.min_lr_fraction + (1.0 - settings.min_lr_fraction) * cosine


def save_training_state(directory: Path, optimizer, scheduler, step: int, losses: list[float]) -> None:
    state_dir = directory / TRAINING_STATE_DIR
    state_dir.mkdir(parents=True, exist_ok=True)
    partial = state_dir / "state.pt.partial"
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step, "losses": losses},
        partial,
    )
    partial.replace(state_dir / "state.pt")


def load_training_state(directory: Path) -> dict:
    path = directory / TRAINING_STATE_DIR / "state.pt"
    if not path.exists():
        raise CheckpointError(f"cannot resume: missing {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CheckpointError(f"cannot resume: unreadable {path}: {error}") from error


def local_batch_loss(model: VLJepa, examples: Sequence[ExampleLike], hard_negatives: bool) -> torch.Tensor:
    """InfoNCE of one process over its whole batch."""
    batch = make_batch(model, examples)
    groups = batch.pop("answer_groups")
    negative_ids, negative_mask = batch.pop("negative_ids"), batch.pop("negative_mask")
    negative_groups = batch.pop("negative_groups")
    pred, target = model(**batch)
    use_negatives = hard_negatives and len(negative_ids) > 0
    negatives = model.encode_text(negative_ids, negative_mask) if use_negatives else None
    return info_nce(pred, target, model.config.temperature, answer_groups=groups, hard_negatives=negatives,
                    hard_negative_groups=negative_groups)


def draw_examples(source: ExampleSource, batch_size: int, context: DistributedContext) -> list[ExampleLike]:
    """This rank's `batch_size` examples: its slice of a global batch drawn alike on every rank, or its own."""
    if not context.distributed or getattr(source, "per_rank", False):
        return source.batch(batch_size)
    examples = source.batch(batch_size * context.world_size)
    return examples[context.rank * batch_size:(context.rank + 1) * batch_size]


def train(
    model: VLJepa,
    source: ExampleSource,
    settings: TrainSettings,
    out_dir: str | Path | None = None,
    resume: bool = False,
    text_bank: list[str] | None = None,
    context: DistributedContext = SINGLE_PROCESS,
) -> TrainResult:
    """Train `model` in place. With out_dir, checkpoints go there (rank 0 writes); resume=True continues from it.

    settings.batch_size is per rank: the InfoNCE runs over the global batch of batch_size x world_size.
    """
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise ValueError("resume needs out_dir")
    torch.manual_seed(settings.seed + context.rank)  # rank 0 (and a single process) keeps the plain seed
    model.train()
    optimizer = torch.optim.AdamW(parameter_groups(model, settings), lr=settings.learning_rate, betas=(0.9, 0.98))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, settings))
    start_step, losses = 0, []
    if resume:
        # Nothing in the state depends on the world size (DDP replicates every weight), so any size resumes it.
        state = load_training_state(out)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_step, losses = int(state["step"]), list(state["losses"])
        torch.manual_seed(settings.seed * 1_000_003 + start_step + context.rank)
    source.reseed(settings.seed * 1_000_003 + start_step)
    if context.distributed:
        batch_loss = GlobalBatchLoss(model, context, settings.hard_negatives)
    else:  # exactly the one-process loss of before distributed training existed
        def batch_loss(examples):
            return local_batch_loss(model, examples, settings.hard_negatives)

    def checkpoint(step: int) -> None:
        if out is not None and context.is_main:
            save_model(model, out, text_bank=text_bank)
            save_training_state(out, optimizer, scheduler, step, losses)
        barrier(context)  # no rank runs ahead of (or exits before) a checkpoint being complete

    started = time.monotonic()
    bar = tqdm(range(start_step, settings.steps), desc="train", disable=not (settings.progress and context.is_main),
               initial=start_step, total=settings.steps)
    for step in bar:
        loss = batch_loss(draw_examples(source, settings.batch_size, context))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], settings.grad_clip)
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        if step % 10 == 0 or step == settings.steps - 1:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if settings.checkpoint_every and (step + 1) % settings.checkpoint_every == 0 and step + 1 < settings.steps:
            checkpoint(step + 1)
    model.eval()
    if settings.steps > start_step or not resume:
        checkpoint(settings.steps)
    return TrainResult(settings.steps, start_step, losses, time.monotonic() - started)
