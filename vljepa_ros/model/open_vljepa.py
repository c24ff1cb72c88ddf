"""Import open-vljepa's trained checkpoint (dion-jy/open-vljepa, `best.pt`) as a VLJepa.

open-vljepa is VL-JEPA at the paper's geometry: frozen V-JEPA 2 ViT-L, the last 8 layers of Llama-3.2-1B
(causal mask off), EmbeddingGemma-300M, 1536-d. Its checkpoint is a torch pickle
`{epoch, model_state_dict, loss, config}` that holds only what training changed:

    predictor.layers.{0..N-1}.*   the kept Llama layers, renumbered from 0      -> predictor.layers.*
    predictor.embed_tokens.weight, predictor.norm.weight                         -> same names
    predictor.vis_proj.*, predictor.out_proj.*                                   -> predictor.visual_proj.*, out_proj.*
    y_encoder.model.*             the fine-tuned Gemma 3 text model              -> y_encoder.gemma.*
    y_encoder.projector.*         768 -> 1536                                    -> y_encoder.head.*

The frozen X-encoder comes from the V-JEPA 2 directory, the geometry from the three component directories,
and `config` (the training YAML as a plain dict) gives what the forward pass depends on beyond weights.
How its forward pass maps onto our one model (every row is either the same code path or a config option):

    frames          data.num_frames (8) uniformly sampled   -> frames_per_clip
    pixels          frames / 255, Resize(data.image_size) in float, CenterCrop, ImageNet mean/std
                                                            -> resize_shortest_edge, pixel_pipeline="torchvision_float"
    visual tokens   V-JEPA 2 last_hidden_state, no extra projection (encoder.output_dim null) -> XEncoder as is
    predictor       [visual, query] tokens, bidirectional padding-only mask, RoPE positions 0..N+Lq-1 with the
                    Llama config's rope scaling (llama3), final RMSNorm, masked mean over visual + real query
                    tokens, out_proj                          -> Predictor as is
    query           the Llama tokenizer (BOS added, its own padding side), padded to data.max_query_len
                                                            -> query_tokenizer, query_max_tokens
    Y-encoder       the Gemma tokenizer as is (BOS/EOS included in the mean), padded to data.max_caption_len,
                    masked mean, projector; no sentence-transformers Dense / Normalize
                                                            -> text_max_tokens, y_dense_dims=[]
    temperature     training.temperature                    -> temperature

Loading never runs code from the pickle (torch.load(weights_only=True)); a state dict whose keys or shapes do
not match the component directories is refused naming the first mismatches and what was expected.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from .checkpoint import (check_state_dict, component_config, load_x_encoder_weights,
                         model_with_component_tokenizers)
from .config import VLJepaConfig, get_preset
from .vljepa import VLJepa

# The query open-vljepa trained and evaluated with (data.query_text in its configs, DEFAULT_RETRIEVAL_PROMPT).
OPEN_VLJEPA_QUERY = "Describe the video."
# Their name prefix -> ours. The first matching row wins, so specific rows come first.
KEY_PREFIXES = (
    ("predictor.vis_proj.", "predictor.visual_proj."),
    ("predictor.", "predictor."),
    ("y_encoder.projector.", "y_encoder.head."),
    ("y_encoder.model.", "y_encoder.gemma."),
)


@dataclass(frozen=True)
class TrainingSettings:
    """What open-vljepa's training config says about the forward pass."""

    predictor_layers: int
    shared_dim: int
    frames: int
    image_size: int
    query_tokens: int
    text_tokens: int
    temperature: float
    y_encoder_lr_multiplier: float
    query: str
    epoch: Any = None


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], Any]:
    """(state dict, training config dict, epoch) of an open-vljepa checkpoint, loaded without running code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"missing checkpoint file: {path}")
    try:
        # mmap: the tensors stay in the file's pages until copied into the model (no second copy in RAM).
        payload = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # pickle refusals, truncated zips, not a torch file: all mean "cannot use it"
        raise CheckpointError(f"cannot read {path} as a weights-only torch checkpoint: {error}") from error
    if not isinstance(payload, dict) or not isinstance(payload.get("model_state_dict"), dict):
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is not an open-vljepa checkpoint: expected a dict with 'model_state_dict' "
                              f"and 'config', found {found}")
    state = payload["model_state_dict"]
    not_tensors = [key for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(f"{path}: model_state_dict entries that are not tensors: {not_tensors[:5]}")
    config = payload.get("config") or {}
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: 'config' should be the training YAML as a dict, found {type(config).__name__}")
    return state, config, payload.get("epoch")


def training_settings(config: dict[str, Any], source: Path, epoch: Any = None) -> TrainingSettings:
    """The forward-pass settings of open-vljepa's training config (their configs/*.yaml; defaults as theirs)."""
    encoder, predictor, y_encoder = config.get("encoder", {}), config.get("predictor", {}), config.get("y_encoder", {})
    data, training = config.get("data", {}), config.get("training", {})
    if encoder.get("output_dim") not in (None, 0):
        raise CheckpointError(f"{source}: encoder.output_dim={encoder['output_dim']} adds a projection after V-JEPA 2 "
                              "that this model has no place for (open-vljepa's released configs use null)")
    if not predictor.get("disable_causal_mask", True):
        raise CheckpointError(f"{source}: predictor.disable_causal_mask is false; the predictor here is bidirectional")
    shared = int(predictor.get("proj_dim", 1536))
    if int(y_encoder.get("proj_dim", shared)) != shared:
        raise CheckpointError(f"{source}: predictor.proj_dim {shared} != y_encoder.proj_dim {y_encoder['proj_dim']}")
    return TrainingSettings(
        predictor_layers=int(predictor.get("n_keep_layers", 8)),
        shared_dim=shared,
        frames=int(data.get("num_frames", 16)),
        image_size=int(data.get("image_size", 256)),
        query_tokens=int(data.get("max_query_len", predictor.get("max_query_len", 512))),
        text_tokens=int(data.get("max_caption_len", y_encoder.get("max_target_len", 512))),
        temperature=float(training.get("temperature", 0.07)),
        y_encoder_lr_multiplier=float(y_encoder.get("lr_multiplier", 0.05)),
        query=str(data.get("query_text", OPEN_VLJEPA_QUERY)),
        epoch=epoch,
    )


def base_config(settings: TrainingSettings) -> VLJepaConfig:
    """The paper preset with open-vljepa's non-component settings (the components fill in the geometry, then
    `import_open_vljepa` sets the pixel pipeline, which depends on the image size they give)."""
    return get_preset("paper").replace(
        name="open-vljepa",
        frames_per_clip=settings.frames,
        shared_dim=settings.shared_dim,
        query_max_tokens=settings.query_tokens,
        text_max_tokens=settings.text_tokens,
        temperature=settings.temperature,
        y_encoder_lr_multiplier=settings.y_encoder_lr_multiplier,
        freeze_x_encoder=True,
    )


def their_key(our_key: str) -> str | None:
    """open-vljepa's name of one of our state-dict keys; None for the parts not in their checkpoint."""
    for theirs, ours in KEY_PREFIXES:
        if our_key.startswith(ours):
            return theirs + our_key[len(ours) :]
    return None


def expected_checkpoint_tensors(model: VLJepa) -> dict[str, tuple[torch.Tensor, str]]:
    """Their key -> (our tensor, our key) for every tensor the checkpoint must hold for this model."""
    expected = {}
    for key, tensor in model.state_dict().items():
        theirs = their_key(key)
        if theirs is not None and not key.startswith("x_encoder."):
            expected[theirs] = (tensor, key)
    return expected


def import_open_vljepa(checkpoint: str | Path, vjepa2_dir: str | Path, llama_dir: str | Path,
                       gemma_dir: str | Path) -> tuple[VLJepa, TrainingSettings]:
    """open-vljepa's `best.pt` + the three component directories -> (VLJepa in eval mode, its training settings).

    vjepa2_dir: facebook/vjepa2-vitl-fpc64-256 (the frozen X-encoder's weights and config);
    llama_dir:  meta-llama/Llama-3.2-1B (geometry, RoPE scaling, tokenizer; its weights are not used: the
                checkpoint holds the kept layers, the embedding table and the final norm);
    gemma_dir:  google/embeddinggemma-300m (geometry and tokenizer; its Dense modules are not used).
    """
    checkpoint, vjepa2_dir, llama_dir, gemma_dir = Path(checkpoint), Path(vjepa2_dir), Path(llama_dir), Path(gemma_dir)
    state, training_config, epoch = read_checkpoint(checkpoint)
    settings = training_settings(training_config, checkpoint, epoch)
    config, _ = component_config(vjepa2_dir, llama_dir, gemma_dir, settings.predictor_layers, base_config(settings),
                                 dense_weights=[], heads=None)
    if config.image_size != settings.image_size:
        raise CheckpointError(f"{checkpoint}: trained at data.image_size={settings.image_size}, but "
                              f"{vjepa2_dir / 'config.json'} has crop_size={config.image_size}")
    # torchvision Resize(image_size) + CenterCrop(image_size) on float frames (their data loaders).
    config = config.replace(resize_shortest_edge=settings.image_size, pixel_pipeline="torchvision_float")
    model = model_with_component_tokenizers(config, llama_dir, gemma_dir)
    expected = expected_checkpoint_tensors(model)
    check_state_dict({theirs: tensor for theirs, (tensor, _) in expected.items()}, state, checkpoint,
                     against=f"the last {settings.predictor_layers} layers of {llama_dir}, {gemma_dir} and a "
                             f"{settings.shared_dim}-d shared space")
    load_x_encoder_weights(model.state_dict(), vjepa2_dir)
    for key, tensor in state.items():
        expected[key][0].copy_(tensor)  # bf16 pretrained parts are upcast exactly into fp32
    return model.eval(), settings
