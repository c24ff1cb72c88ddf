"""A tiny random-weight model directory in the shipped layout (weights, tokenizers, banks), for tests
that need a model but not a trained one."""
from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ["pick up the red cube", "push the blue ball left", "place the green triangle", "the arm is idle"]
CAPTIONS = ["the robot picks up the red cube", "the blue ball is pushed to the left",
            "a green triangle is placed on the table", "nothing moves on the table"]
ACTIONS = ["pick up the red cube", "push the blue ball left", "place the green triangle", "open the gripper"]
QUERIES = ["What is happening?", "Which action changed the first state into the last?"]


def write_tiny_model(directory: Path) -> Path:
    import torch

    from vljepa_ros.model.checkpoint import save_banks, save_model
    from vljepa_ros.model.config import get_preset
    from vljepa_ros.model.vljepa import new_model

    torch.manual_seed(0)
    model = new_model(get_preset("tiny"), LABELS + CAPTIONS + ACTIONS + QUERIES).eval()
    save_model(model, directory)
    save_banks(directory, {"labels": LABELS, "captions": CAPTIONS, "actions": ACTIONS})
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


def write_model_variants(tmp_path: Path, model_dir: Path) -> dict[str, Path]:
    """Directories a user might point `model_dir` at, beside a working `model_dir`:
    missing (no such directory), truncated (weights cut to a third: refused when set),
    mismatched (whole files whose weights do not fit the config: passes the set-time check, fails to
    load) and valid (the same model with one weight changed: another model id)."""
    import shutil

    import safetensors.torch

    truncated = Path(shutil.copytree(model_dir, tmp_path / "truncated_model"))
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])
    mismatched = Path(shutil.copytree(model_dir, tmp_path / "mismatched_model"))
    tensors = safetensors.torch.load_file(str(mismatched / "model.safetensors"))
    safetensors.torch.save_file(dict(list(tensors.items())[1:]), str(mismatched / "model.safetensors"))
    valid = Path(shutil.copytree(model_dir, tmp_path / "other_model"))
    tensors = safetensors.torch.load_file(str(valid / "model.safetensors"))
    name = sorted(tensors)[0]
    tensors[name] = tensors[name] + 0.01
    safetensors.torch.save_file(tensors, str(valid / "model.safetensors"), metadata={"format": "pt"})
    return {"missing": tmp_path / "no_such_model", "truncated": truncated, "mismatched": mismatched, "valid": valid}
