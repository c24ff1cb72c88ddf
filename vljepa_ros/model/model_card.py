"""Model directories made from public checkpoints: the model card and the starter banks written beside the weights.

An imported model knows whatever its training data taught it, not the user's robot: the banks written here are a
handful of generic examples so that every node starts, each file says so in its first lines, and the card says
which labels to write instead.
"""
from __future__ import annotations

import hashlib
import platform
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..paths import bank_file
from .checkpoint import model_id, save_model
from .vljepa import VLJepa

MODEL_CARD_FILE = "MODEL_CARD.md"
# Starter vocabulary (banks/<name>.txt): open-vocabulary classification, retrieval decoding and action ranking
# only ever choose among these, so a deployment replaces them with its own (label_bank_file, text_bank_file,
# candidates_file parameters, or by editing these files).
STARTER_BANKS = {
    "labels": ["a person walking", "a robot arm picking up an object", "a hand placing a cup on a table",
               "a door opening", "an empty room", "someone cooking in a kitchen"],
    "captions": ["a person walks across the room", "a robot arm picks up an object from a table",
                 "a hand places a cup on the table", "a door opens", "nothing happens in an empty room",
                 "someone is cooking in a kitchen"],
    "actions": ["pick up the object", "put the object down", "open the door", "close the door", "push the object",
                "do nothing"],
}
BANK_HEADER = ("# Starter examples written by `vljepa-ros import`: the model only ever answers with entries of\n"
               "# this file. Replace them with the vocabulary of your robot and task (one entry a line).\n")
# Terms to accept before downloading each public source (as their Hugging Face pages state them).
LICENCES = {
    "vjepa2": "facebook/vjepa2-vitl-fpc64-256: the licence on its Hugging Face page (V-JEPA 2 release)",
    "llama": "meta-llama/Llama-3.2-1B: Llama 3.2 Community License (gated; accept it on the Hub)",
    "gemma": "google/embeddinggemma-300m: Gemma Terms of Use (gated; accept them on the Hub)",
    "open-vljepa": "cun-bjy/open-vljepa (code: dion-jy/open-vljepa): the repository's licence; the checkpoint holds "
                   "fine-tuned Llama 3.2 and Gemma weights, so their terms apply to it too",
}


@dataclass
class ModelCard:
    """What goes into MODEL_CARD.md: where each part came from and what was (not) checked."""

    title: str
    summary: str
    sources: dict[str, str]  # part -> path or Hub id it was read from
    licences: list[str]
    verified: list[str]
    not_verified: list[str]
    usage: list[str] = field(default_factory=list)

    def render(self, model: VLJepa, identity: str, weights_dtype: str) -> str:
        config = model.config
        counts = model.component_parameter_counts()
        lines = [f"# {self.title}", "", self.summary, "", f"Model id: `{identity}` (weights stored as {weights_dtype}).",
                 "", "## Sources", ""]
        lines += [f"- {part}: `{where}`" for part, where in self.sources.items()]
        lines += ["", "## Licences to accept before use", ""] + [f"- {text}" for text in self.licences]
        lines += ["", "## Forward pass (config.json)", "",
                  f"- {config.frames_per_clip} frames of {config.image_size}² "
                  f"(pixel_pipeline `{config.pixel_pipeline}`, resize_shortest_edge "
                  f"{config.resize_shortest_edge or 'image_size * 256 / 224'}); {config.num_visual_tokens} visual tokens",
                  f"- predictor: {config.predictor['num_layers']} Llama layers, query padded to "
                  f"{config.query_max_tokens} tokens; Y-encoder text padded to {config.text_max_tokens} tokens, "
                  f"Dense stack {config.y_dense_dims or 'none'}; shared space {config.shared_dim}-d; "
                  f"temperature {config.temperature}",
                  "- parameters: " + ", ".join(f"{part} {count / 1e6:.0f}M" for part, count in counts.items())]
        if self.usage:
            lines += ["", "## Use", ""] + [f"- {text}" for text in self.usage]
        lines += ["", "## Verified", ""] + [f"- {text}" for text in self.verified]
        lines += ["", "## Not verified", ""] + [f"- {text}" for text in self.not_verified]
        lines += ["", f"Written by `vljepa-ros import` (torch {torch.__version__}, Python {platform.python_version()}).",
                  ""]
        return "\n".join(lines)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def write_starter_banks(directory: Path) -> None:
    for name, texts in STARTER_BANKS.items():
        path = bank_file(directory, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(BANK_HEADER + "".join(f"{text}\n" for text in texts), encoding="utf-8")


def write_model_directory(model: VLJepa, directory: str | Path, card: ModelCard,
                          dtype: torch.dtype | None = None) -> str:
    """Save `model` as a standard model directory (weights, config, tokenizers), the starter banks and the card;
    returns the model id. dtype=torch.bfloat16 halves the weights file."""
    directory = Path(directory)
    save_model(model, directory, dtype=dtype)
    write_starter_banks(directory)
    identity = model_id(directory)
    weights_dtype = ("bf16: every fp32 weight rounded to bf16 once; loading casts them back to fp32"
                     if dtype == torch.bfloat16 else "fp32")
    (directory / MODEL_CARD_FILE).write_text(card.render(model, identity, weights_dtype), encoding="utf-8")
    return identity


VERIFIED_KEY_LAYOUT = ("key names, shapes and forward semantics checked at tiny geometry against an independent "
                       "re-implementation of open-vljepa's forward pass (test/test_model_import.py): clip and text "
                       "embeddings agree to cosine >= 0.99999 in torch and through ONNX Runtime")
NOT_VERIFIED_REAL_WEIGHTS = ("the real downloaded files: they cannot be fetched on the machines that built this "
                             "package; the full-size path was run with random weights in the same formats")


def open_vljepa_card(checkpoint: Path, vjepa2_dir: Path, llama_dir: Path, gemma_dir: Path, query: str,
                     epoch: object, checkpoint_sha256: str) -> ModelCard:
    return ModelCard(
        title="open-vljepa, imported",
        summary=("VL-JEPA at the paper's geometry as trained by open-vljepa (V-JEPA 2 ViT-L frozen, the last Llama-3.2-1B "
                 "layers as a bidirectional predictor, EmbeddingGemma-300M, bidirectional InfoNCE). Its authors report "
                 "MSR-VTT text-to-video R@1 23.9 in-domain and 13.7 zero-shot (the VL-JEPA paper: 51.6)."),
        sources={"checkpoint": str(checkpoint), "checkpoint sha256": checkpoint_sha256,
                 "checkpoint epoch": str(epoch),
                 "X-encoder": str(vjepa2_dir), "predictor geometry + query tokenizer": str(llama_dir),
                 "Y-encoder geometry + text tokenizer": str(gemma_dir)},
        licences=[LICENCES[name] for name in ("open-vljepa", "vjepa2", "llama", "gemma")],
        usage=[f"query: `{query}` (what it was trained with; set the perception node's `query` to it)",
               "labels, captions and actions: banks/*.txt hold starter examples only; give your own vocabulary",
               "a GPU: `backend: torch`, `device: cuda`, `precision: bf16` (see the README, Run a trained VL-JEPA)"],
        verified=[VERIFIED_KEY_LAYOUT],
        not_verified=[NOT_VERIFIED_REAL_WEIGHTS, "retrieval quality (their R@1 numbers were not reproduced here)",
                      "the real Llama 3 / Gemma tokenizers (tests use tokenizers built here; both are loaded the "
                      "same way open-vljepa loads them, with AutoTokenizer)"],
    )


def components_card(vjepa2_dir: Path, llama_dir: Path, gemma_dir: Path, predictor_layers: int) -> ModelCard:
    return ModelCard(
        title="VL-JEPA from its public components (untrained predictor)",
        summary=("The paper's model assembled from V-JEPA 2, the last "
                 f"{predictor_layers} layers of Llama and EmbeddingGemma (with its Dense stack). The visual projection, "
                 "output projection and Y head are freshly initialised: its embeddings mean nothing until trained "
                 "(`vljepa-ros train --init` this directory)."),
        sources={"X-encoder": str(vjepa2_dir), "predictor + query tokenizer": str(llama_dir),
                 "Y-encoder + text tokenizer": str(gemma_dir)},
        licences=[LICENCES[name] for name in ("vjepa2", "llama", "gemma")],
        verified=["component loading (test/test_model_checkpoint.py) and this command at tiny geometry "
                  "(test/test_model_import.py)"],
        not_verified=[NOT_VERIFIED_REAL_WEIGHTS, "any semantics: the new layers are random"],
    )
