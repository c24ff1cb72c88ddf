"""Y-encoder: target text -> embedding in the shared space.

VL-JEPA initialises it with EmbeddingGemma-300M: the Gemma 3 text model run with bidirectional
attention (transformers Gemma3TextConfig(use_bidirectional_attention=True)), mean pooled over non-pad
tokens, then EmbeddingGemma's Dense stack (768 -> 3072 -> 768, no bias, identity activation) when the
config lists it, then a linear head to the shared space (1536-d in the paper). It is not frozen; the
paper trains it with a 0.05x learning rate.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import Gemma3TextConfig, Gemma3TextModel

from .config import VLJepaConfig
from .predictor import masked_mean


def gemma_config(config: VLJepaConfig) -> Gemma3TextConfig:
    kwargs = dict(config.y_encoder)
    kwargs["use_bidirectional_attention"] = True  # EmbeddingGemma's mode; an encoder, not a language model
    return Gemma3TextConfig(**kwargs, attn_implementation="sdpa")


class YEncoder(nn.Module):
    def __init__(self, config: VLJepaConfig) -> None:
        super().__init__()
        self.gemma = Gemma3TextModel(gemma_config(config))
        dims = [self.gemma.config.hidden_size, *config.y_dense_dims]
        self.dense = nn.ModuleList([nn.Linear(d_in, d_out, bias=False) for d_in, d_out in zip(dims[:-1], dims[1:])])
        self.head = nn.Linear(dims[-1], config.shared_dim)
        std = self.gemma.config.initializer_range
        for linear in [*self.dense, self.head]:
            nn.init.normal_(linear.weight, std=std)
        nn.init.zeros_(self.head.bias)

    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        if text_ids.shape != text_mask.shape or text_ids.ndim != 2:
            raise ValueError(f"text ids {tuple(text_ids.shape)} and mask {tuple(text_mask.shape)} must be (B, L)")
        hidden = self.gemma(input_ids=text_ids, attention_mask=text_mask).last_hidden_state
        pooled = masked_mean(hidden, text_mask)
        for linear in self.dense:
            pooled = linear(pooled)
        return self.head(pooled)
