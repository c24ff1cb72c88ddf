"""Bidirectional InfoNCE between predicted and target embeddings (the VL-JEPA training loss).

logits = pred @ target.T / temperature; cross-entropy along rows (prediction -> text) and along columns
(text -> prediction), averaged. With B distinct items the loss is log(B) at chance and 0 when perfect.

Duplicate answers: in a batch from a small synthetic world several items often share the same answer
text ("pick up the red cube"). Their targets are identical, so treating them as negatives would push a
prediction away from its own correct answer. We EXCLUDE such pairs: off-diagonal logits whose answers
match (same group id) are masked to -inf in both directions, leaving each row one positive (its own
item) and only truly different answers as negatives. A caption example is grouped by the class label it
paraphrases (answer_group_keys), so paraphrases of one action are not pushed apart either.

Hard negatives: random in-batch answers are mostly easy ("the red ball appears" vs "push the blue cube
left"), so they teach little about what inverse dynamics needs (appears vs disappears, left vs right, red
vs yellow). Texts known to be wrong for some item (an action item's 3 distractors, the confusable labels of
a tabletop caption: other shapes, the inverse action, other directions) can be appended as
extra columns of the prediction -> text direction; each is a negative for every row whose own answer
differs from it. The text -> prediction direction is unchanged.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(
    pred: torch.Tensor,
    target: torch.Tensor,
    temperature: float = 0.07,
    answer_groups: torch.Tensor | None = None,
    hard_negatives: torch.Tensor | None = None,
    hard_negative_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """pred, target: (B, D) (normalised inside); answer_groups: (B,) ints, equal = same answer text.

    hard_negatives: (M, D) extra text embeddings; hard_negative_groups: (M,) their group ids, from the same
    numbering as answer_groups (answer_group_ids over answers + negatives), so a negative equal to a row's
    own answer is masked for that row.
    """
    if pred.shape != target.shape or pred.ndim != 2:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must both be (B, D)")
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    pred = F.normalize(pred.float(), dim=-1)
    target = F.normalize(target.float(), dim=-1)
    logits = pred @ target.T / temperature
    if answer_groups is not None:
        same_answer = answer_groups[:, None] == answer_groups[None, :]
        not_self = ~torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(same_answer & not_self, float("-inf"))
    labels = torch.arange(len(logits), device=logits.device)
    text_to_pred = F.cross_entropy(logits.T, labels)
    if hard_negatives is not None and len(hard_negatives):
        if answer_groups is None or hard_negative_groups is None:
            raise ValueError("hard negatives need answer_groups and hard_negative_groups to mask a row's own answer")
        extra = pred @ F.normalize(hard_negatives.float(), dim=-1).T / temperature
        extra = extra.masked_fill(answer_groups[:, None] == hard_negative_groups[None, :], float("-inf"))
        logits = torch.cat([logits, extra], dim=1)
    return 0.5 * (F.cross_entropy(logits, labels) + text_to_pred)


def answer_group_keys(examples) -> list[str]:
    """The text each example's answer is grouped by: its class when it has one (so the paraphrases "the robot
    picks up the red cube" and "pick up the red cube" are one answer, not each other's negatives), else itself."""
    return [getattr(e, "answer_class", "") or e.answer for e in examples]


def answer_group_ids(answers: list[str]) -> torch.Tensor:
    """Group ids for info_nce: equal strings (after whitespace/case normalisation) get the same id.

    For hard negatives, call it once on answers + negatives and split the result.
    """
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(" ".join(a.lower().split()), len(ids)) for a in answers], dtype=torch.long)
