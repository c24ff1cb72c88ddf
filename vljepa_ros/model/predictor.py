"""Predictor: (visual tokens, query) -> predicted target embedding.

VL-JEPA initialises it with the last 8 transformer layers of Llama-3.2-1B and turns the causal mask
off, so visual and query tokens attend to each other in both directions. Here:

  visual tokens (B, N, Dv) --linear--> (B, N, H)      query ids (B, Lq) --Llama embedding table--> (B, Lq, H)
  concat [visual, query] -> Llama decoder layers with an explicit bidirectional padding-only mask,
  RoPE positions 0..N+Lq-1 as in Llama -> final RMSNorm -> mean over visual + non-pad query tokens
  -> linear -> (B, shared_dim)

Queries are right-padded to a fixed length; pad tokens are excluded as attention keys and from the
pool, so the result does not depend on how much padding there is.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRMSNorm, LlamaRotaryEmbedding

from .config import VLJepaConfig


def llama_config(config: VLJepaConfig) -> LlamaConfig:
    kwargs = {k: v for k, v in config.predictor.items() if k != "num_layers"}
    kwargs["num_hidden_layers"] = int(config.predictor["num_layers"])
    return LlamaConfig(**kwargs, attn_implementation="sdpa")


def bidirectional_padding_mask(token_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) 1 = real token -> additive (B, 1, L, L) mask: every query may attend to every real key.

    Passing an explicit mask is what turns Llama's causal attention off: transformers only applies its
    causal default when no mask is given.
    """
    keys_allowed = token_mask[:, None, None, :].bool()
    blocked = torch.finfo(dtype).min
    mask = torch.zeros(keys_allowed.shape, dtype=dtype, device=token_mask.device).masked_fill(~keys_allowed, blocked)
    return mask.expand(-1, 1, token_mask.shape[1], -1)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class Predictor(nn.Module):
    def __init__(self, config: VLJepaConfig, visual_dim: int) -> None:
        super().__init__()
        self.llama_config = llama_config(config)
        hidden = self.llama_config.hidden_size
        self.visual_proj = nn.Linear(visual_dim, hidden)
        # Named as in LlamaModel so real Llama weights map 1:1 (embed_tokens, layers.i, norm).
        self.embed_tokens = nn.Embedding(self.llama_config.vocab_size, hidden)
        self.layers = nn.ModuleList(
            [LlamaDecoderLayer(self.llama_config, layer_idx=i) for i in range(self.llama_config.num_hidden_layers)]
        )
        for layer in self.layers:
            layer.self_attn.is_causal = False  # belt and braces: the explicit mask already disables causality
        self.norm = LlamaRMSNorm(hidden, eps=self.llama_config.rms_norm_eps)
        self.rotary_emb = LlamaRotaryEmbedding(self.llama_config)
        self.out_proj = nn.Linear(hidden, config.shared_dim)
        self.max_query_tokens = config.query_max_tokens
        self._init_new_weights()

    def _init_new_weights(self) -> None:
        # Llama's init (normal std=initializer_range); RMSNorm weights start at 1 by construction.
        std = self.llama_config.initializer_range
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)

    def hidden_states(
        self, visual_tokens: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-norm hidden states (B, N + Lq, H) and the token mask (B, N + Lq) used for pooling."""
        if query_ids.shape != query_mask.shape or query_ids.ndim != 2:
            raise ValueError(f"query ids {tuple(query_ids.shape)} and mask {tuple(query_mask.shape)} must be (B, Lq)")
        if visual_tokens.shape[0] != query_ids.shape[0]:
            raise ValueError("visual tokens and queries have different batch sizes")
        visual = self.visual_proj(visual_tokens)
        query = self.embed_tokens(query_ids).to(visual.dtype)
        hidden = torch.cat([visual, query], dim=1)
        visual_mask = torch.ones(visual.shape[:2], dtype=query_mask.dtype, device=query_mask.device)
        token_mask = torch.cat([visual_mask, query_mask], dim=1)

        position_ids = torch.arange(hidden.shape[1], device=hidden.device).unsqueeze(0)
        position_embeddings = self.rotary_emb(hidden, position_ids)
        attention_mask = bidirectional_padding_mask(token_mask, hidden.dtype)
        for layer in self.layers:
            hidden = layer(
                hidden,
                attention_mask=attention_mask,
                position_ids=position_ids,
                position_embeddings=position_embeddings,
            )
        return self.norm(hidden), token_mask

    def forward(self, visual_tokens: torch.Tensor, query_ids: torch.Tensor, query_mask: torch.Tensor) -> torch.Tensor:
        hidden, token_mask = self.hidden_states(visual_tokens, query_ids, query_mask)
        return self.out_proj(masked_mean(hidden, token_mask))
