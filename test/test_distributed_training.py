"""`vljepa-ros train` under torchrun (2 CPU processes, gloo) equals one process with the doubled batch.

Adam normalises gradient scale and training clips the norm, so equal weights alone would not catch a
gradient off by the world size: the gradient of one global-batch step is compared directly as well.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import safetensors.torch
import torch

from distributed_gradient_check import distributed_examples, tiny_model
from vljepa_ros.model.distributed import DistributedSetupError, choose_backend, init_distributed
from vljepa_ros.model.training import local_batch_loss
from vljepa_ros.world.dataset import save_examples

ROOT = Path(__file__).resolve().parents[1]
STEPS, RANK_BATCH = 3, 4
RUN_MARKER = "VLJEPA_ROS_TEST_RUN"


def processes_marked(marker: str) -> list[int]:
    """Pids whose environment carries `marker`: everything one run_python call started, orphans included."""
    tag = f"{RUN_MARKER}={marker}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if tag in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue  # exited meanwhile, or not ours to read
    return found


def run_python(arguments: list[str], nproc: int | None = None) -> str:
    """Run `python [-m torch.distributed.run ...] ARGS` from the source tree.

    torchrun starts each rank in a session of its own, so killing the launcher's group would miss them: every
    process started here carries a marker in its environment, and whatever still runs at the end is killed.
    """
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)] if nproc else []
    marker = uuid.uuid4().hex
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), **{RUN_MARKER: marker})
    process = subprocess.Popen([sys.executable, *launcher, *arguments], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=600)
    finally:
        for pid in processes_marked(marker):
            with contextlib.suppress(ProcessLookupError):  # it exited between the scan and the kill
                os.kill(pid, signal.SIGKILL)
        process.kill()  # no-op once it exited
        process.communicate()
    assert process.returncode == 0, output
    return output


def train_command(data: Path, out: Path, steps: int, batch_size: int, nproc: int | None = None,
                  resume: bool = False) -> str:
    return run_python(["-m", "vljepa_ros.cli", "train", "--preset", "tiny", "--data", str(data), "--steps",
                       str(steps), "--batch-size", str(batch_size), "--warmup-steps", "1", "--checkpoint-every", "2",
                       "--out", str(out)] + (["--resume"] if resume else []), nproc)


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(directory / "model.safetensors")


def losses(directory: Path) -> list[float]:
    return torch.load(directory / "training_state" / "state.pt", weights_only=True)["losses"]


def assert_same_weights(first: Path, second: Path) -> None:
    a, b = weights(first), weights(second)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5,
                                   msg=lambda text, name=name: f"{name}: {text}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """The same examples (24, with hard negatives) trained 3 steps by 2 ranks x 4 and by 1 process x 8."""
    root = tmp_path_factory.mktemp("distributed")
    data = root / "train.npz"
    save_examples(data, distributed_examples(24))
    paths = {"data": data, "two_ranks": root / "two_ranks", "one_process": root / "one_process"}
    paths["two_ranks_log"] = train_command(data, paths["two_ranks"], STEPS, RANK_BATCH, nproc=2)
    train_command(data, paths["one_process"], STEPS, 2 * RANK_BATCH)
    return paths


@pytest.mark.slow
def test_two_ranks_train_like_one_process_with_the_doubled_batch(runs):
    assert losses(runs["two_ranks"]) == pytest.approx(losses(runs["one_process"]), rel=1e-5)
    assert len(losses(runs["two_ranks"])) == STEPS
    assert_same_weights(runs["two_ranks"], runs["one_process"])
    log = runs["two_ranks_log"]
    assert log.count("trained steps 0->3") == 1 and "2 ranks (gloo), global batch 8" in log  # rank 0 logs alone


@pytest.mark.slow
def test_a_two_rank_checkpoint_resumes_in_one_process(runs, tmp_path):
    """2 ranks wrote it, 1 process continues: the same as continuing the 1-process run."""
    for name in ("two_ranks", "one_process"):
        shutil.copytree(runs[name], tmp_path / name)
        train_command(runs["data"], tmp_path / name, STEPS + 2, 2 * RANK_BATCH, resume=True)
        assert torch.load(tmp_path / name / "training_state" / "state.pt", weights_only=True)["step"] == STEPS + 2
    assert_same_weights(tmp_path / "two_ranks", tmp_path / "one_process")


@pytest.mark.slow
def test_a_one_process_checkpoint_resumes_under_two_ranks(runs, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(runs["one_process"], out)
    log = train_command(runs["data"], out, STEPS + 1, RANK_BATCH, nproc=2, resume=True)
    assert "trained steps 3->4" in log and len(losses(out)) == STEPS + 1


@pytest.mark.slow
def test_global_batch_gradient_equals_the_one_process_gradient(tmp_path):
    out = tmp_path / "grads.pt"
    run_python([str(ROOT / "test" / "distributed_gradient_check.py"), str(out)], nproc=2)
    distributed = torch.load(out, weights_only=True)

    model = tiny_model().train()
    loss = local_batch_loss(model, distributed_examples(), hard_negatives=True)
    loss.backward()
    assert distributed["loss"] == pytest.approx(loss.item(), rel=1e-5)
    expected = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
    assert expected.keys() == distributed["grads"].keys()
    assert sum(g.norm() for g in expected.values()) > 1e-3  # a real gradient, not zeros on both sides
    for name, grad in expected.items():
        scale = grad.abs().max().item()  # float noise of reordered sums scales with the tensor
        torch.testing.assert_close(distributed["grads"][name], grad, rtol=1e-4, atol=1e-5 * scale,
                                   msg=lambda text, name=name: f"{name}: {text}")


def test_backend_and_context_follow_the_launcher_environment(monkeypatch):
    assert choose_backend("cpu") == "gloo"
    assert choose_backend("cuda") == ("nccl" if torch.cuda.is_available() else "gloo")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = init_distributed("cpu")  # no torchrun: one process, no process group
    assert (context.rank, context.world_size, context.is_main, context.distributed) == (0, 1, True, False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(DistributedSetupError, match="MASTER_ADDR"):
        init_distributed("cpu")


@pytest.mark.slow
def test_two_ranks_with_two_workers_each_train_on_shards(tmp_path):
    from vljepa_ros.world import dataset, shards

    examples = dataset.generate_examples(0, 16, frames_per_clip=4, image_size=32)
    shards.write_shards(tmp_path / "shards", iter(examples), examples_per_shard=4)  # 4 shards: 1 per worker
    out = tmp_path / "model"
    log = run_python(["-m", "vljepa_ros.cli", "train", "--preset", "tiny", "--data", str(tmp_path / "shards"),
                      "--data-workers", "2", "--steps", "3", "--batch-size", "4", "--warmup-steps", "1",
                      "--out", str(out)], nproc=2)
    assert "global batch 8" in log and len(losses(out)) == 3
