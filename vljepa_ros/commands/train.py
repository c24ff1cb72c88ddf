"""`vljepa-ros train`: train a VL-JEPA model with bidirectional InfoNCE on (clip, query, answer) examples.

    vljepa-ros train --preset small --data tabletop --steps 1500 --batch-size 32 --out models/small
    vljepa-ros train --preset small --data train.npz --steps 500 --out /tmp/run --resume
    vljepa-ros train --preset paper --vjepa2-dir V --llama-dir L --gemma-dir G --data train.npz --out DIR
    vljepa-ros train --init models/small --data tabletop=0.5 my_bag.npz=0.5 --steps 500 --lr 3e-4 --out /tmp/ft

    torchrun --nproc_per_node 2 -m vljepa_ros.cli train --preset small --data data/shards --steps 500 --out DIR

--data is "tabletop" (examples generated on the fly from training seeds of the tabletop world), a .npz
written by `vljepa-ros make-data --examples`, or WebDataset shards written by `make-data --shards` (their
directory, a glob or a brace pattern); or several of these with weights, mixed per example so a
fine-tune does not forget: --data tabletop=0.5 data/mw.npz=0.5 (vljepa_ros/commands/train_data.py).
The output directory is a complete model directory (config.json, model.safetensors, tokenizers,
banks/) plus training_state/ for --resume.

--init MODEL_DIR fine-tunes an existing model: its config, tokenizers and weights are the start (the
--preset and component options are ignored), with a fresh optimizer and schedule. --out gets the
fine-tuned model with banks rebuilt from --data (mix in tabletop to keep its texts); MODEL_DIR's decoder/
is not copied (it decodes the old Y-encoder's embeddings): run `vljepa-ros train-decoder --model OUT`.
--resume continues --out's own training_state/ (of a run with or without --init) and excludes --init.

Under torchrun every process is one rank of a DDP run (gloo on CPU, nccl on CUDA, one GPU per local rank):
--batch-size is per rank and the InfoNCE contrasts the global batch; rank 0 writes the checkpoints and logs.
"tabletop" and .npz data: every rank draws the same global batch and trains on its slice; shards: each rank
(and each of its --data-workers) reads its own shards. --resume accepts a checkpoint of any world size.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from vljepa_ros.commands.train_data import kind_weights_arg

DEFAULT_PRESET = "small"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a VL-JEPA model (bidirectional InfoNCE) on clip/query/answer examples",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default=None, choices=("paper", "small", "mid", "tiny"),
                        help=f"model preset (default: {DEFAULT_PRESET}; ignored with --init)")
    parser.add_argument("--init", type=Path, default=None, metavar="MODEL_DIR",
                        help="fine-tune this model directory: its config, tokenizers and weights are the start, "
                             "with a fresh optimizer (excludes --resume)")
    parser.add_argument("--data", nargs="+", default=["tabletop"], metavar="SOURCE[=WEIGHT]",
                        help='"tabletop", an examples .npz, or shards: a directory, glob or brace pattern of .tar; '
                             'several SOURCE=WEIGHT are mixed per example (default: tabletop)')
    parser.add_argument("--data-workers", type=int, default=0,
                        help="DataLoader worker processes per rank reading shards (default: 0, in the trainer)")
    parser.add_argument("--steps", type=int, required=True, help="total optimizer steps (including resumed ones)")
    parser.add_argument("--batch-size", type=int, default=32,
                        help="examples per step and rank; global batch = this x world size (default: 32)")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write (checkpoints go here too)")
    parser.add_argument("--resume", action="store_true", help="continue from --out's training_state/")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation and data order (default: 0)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    parser.add_argument("--warmup-steps", type=int, default=100, help="linear warm-up steps (default: 100)")
    parser.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints (default: 200)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("--kind-weights", type=kind_weights_arg, default=None, metavar="KIND=W,...",
                        help="tabletop example mix, e.g. caption=0.25,qa=0.25,action=0.5 "
                             "(default: caption=0.5,qa=0.25,action=0.25)")
    parser.add_argument("--no-hard-negatives", dest="hard_negatives", action="store_false",
                        help="ignore the examples' hard negatives (action distractors): in-batch negatives only")
    parser.add_argument("--calibrate-data", nargs="+", default=None, metavar="SOURCE",
                        help="in-distribution data for the familiarity calibration written at the end "
                             "(`vljepa-ros calibrate --data`; default: the --data sources calibrate reads: "
                             "tabletop and .npz examples)")
    parser.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                        help="do not write familiarity.safetensors (run `vljepa-ros calibrate` later)")
    components = parser.add_argument_group("paper preset: start from local component checkpoints (HF layout)")
    components.add_argument("--vjepa2-dir", type=Path, help="V-JEPA 2 directory (VJEPA2Model)")
    components.add_argument("--llama-dir", type=Path, help="Llama-3.2-1B directory (+ tokenizer)")
    components.add_argument("--gemma-dir", type=Path, help="EmbeddingGemma-300M directory (+ tokenizer)")
    components.add_argument("--heads", type=Path, default=None, help="heads .safetensors (default: fresh heads)")
    components.add_argument("--predictor-layers", type=int, default=8, help="last N Llama layers (default: 8)")
    parser.set_defaults(func=run)


def check_init(args: argparse.Namespace) -> None:
    """Refuse combinations of --init that would silently do something else than asked."""
    if args.init is None:
        return
    if args.resume:
        raise SystemExit("train: --resume continues --out's own training_state/, --init starts a fresh optimizer "
                         "from MODEL_DIR's weights; give one of them")
    if not (args.init / "config.json").is_file():
        raise SystemExit(f"train --init: {args.init} is not a model directory (no config.json)")
    if args.out.resolve() == args.init.resolve():
        raise SystemExit("train --init: --out must be another directory than MODEL_DIR (it would be overwritten)")


def training_config(args: argparse.Namespace):
    from vljepa_ros.model.checkpoint import load_config
    from vljepa_ros.model.config import get_preset

    if args.init is not None:
        return load_config(args.init)
    if args.resume and (args.out / "config.json").is_file():
        return load_config(args.out)  # a resumed fine-tune keeps its own config
    return get_preset(args.preset or DEFAULT_PRESET)


def build_model(args: argparse.Namespace, config, corpus: list[str], device: str):
    from vljepa_ros.model.checkpoint import build_from_components, load_model
    from vljepa_ros.model.vljepa import new_model

    if args.resume:
        return load_model(args.out, device=device)
    if args.init is not None:
        return load_model(args.init, device=device)
    if args.preset == "paper":
        if not (args.vjepa2_dir and args.llama_dir and args.gemma_dir):
            raise SystemExit("train --preset paper needs --vjepa2-dir, --llama-dir and --gemma-dir")
        return build_from_components(args.vjepa2_dir, args.llama_dir, args.gemma_dir, args.heads,
                                     predictor_layers=args.predictor_layers)
    return new_model(config, corpus)


def run(args: argparse.Namespace) -> int:
    from vljepa_ros.model.distributed import init_distributed, shutdown

    context = init_distributed(args.device)
    try:
        return train_here(args, context)
    finally:
        shutdown(context)


def train_here(args: argparse.Namespace, context) -> int:
    import torch

    from vljepa_ros.commands.train_data import load_data
    from vljepa_ros.model.training import TrainSettings, train

    check_init(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    config = training_config(args)
    data = load_data(args, config)
    model = build_model(args, config, data.corpus, context.device)
    model.to(context.device)
    log = print if context.is_main else (lambda *_: None)
    if args.resume:
        log(f"resuming {args.out}")
    if args.init is not None:
        ignored = [name for name in ("preset", "vjepa2_dir", "llama_dir", "gemma_dir", "heads") if getattr(args, name)]
        log(f"fine-tuning {args.init} (fresh optimizer)" + (f"; ignoring --{', --'.join(ignored)}" if ignored else ""))
    if len(data.parts) > 1:
        log("data mixture: " + ", ".join(f"{part.spec} {part.weight:g}" for part in data.parts))
    counts = model.component_parameter_counts()
    log(f"preset {model.config.name}: " + ", ".join(f"{k} {v / 1e6:.2f}M" for k, v in counts.items())
        + f" (X-encoder {'frozen' if model.config.freeze_x_encoder else 'trained'})"
        + (f"; {context.world_size} ranks ({context.backend}), global batch {args.batch_size * context.world_size}"
           if context.distributed else ""))

    settings = TrainSettings(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr,
                             warmup_steps=args.warmup_steps, checkpoint_every=args.checkpoint_every, seed=args.seed,
                             hard_negatives=args.hard_negatives)
    result = train(model, data.source, settings, out_dir=args.out, resume=args.resume, text_bank=data.answers,
                   context=context)
    if data.banks and context.is_main:
        from vljepa_ros.model.checkpoint import save_banks

        save_banks(args.out, data.banks)
    if args.init is not None:
        log(f"{args.out}: banks rebuilt from --data ({', '.join(data.banks) or 'answers only'}); no decoder/ "
            f"(the Y-encoder moved): run `vljepa-ros train-decoder --model {args.out}`")
    log(f"trained steps {result.start_step}->{result.steps_done} in {result.wall_time_s:.0f} s; "
        f"mean loss of the last 50 steps {result.final_loss:.4f}; model in {args.out}")
    if args.calibrate and context.is_main:
        calibrate_trained_model(args, log)
    return 0


def calibration_sources(args: argparse.Namespace) -> list[str]:
    """--calibrate-data, else the --data sources the calibration reads (shards are not: clips unknown)."""
    from vljepa_ros.commands.train_data import split_spec

    if args.calibrate_data:
        return list(args.calibrate_data)
    specs = [split_spec(text)[0] for text in args.data]
    return [spec for spec in specs if spec == "tabletop" or spec.endswith(".npz")]


def calibrate_trained_model(args: argparse.Namespace, log) -> None:
    """Write the new model's familiarity statistics, so what it was trained on is familiar to it."""
    from vljepa_ros.commands.calibrate import calibrate
    from vljepa_ros.runtime import create_engine

    sources = calibration_sources(args)
    if not sources:
        log(f"no familiarity calibration: none of --data is tabletop or .npz; run `vljepa-ros calibrate --model "
            f"{args.out} --data ...`")
        return
    engine = create_engine(args.out, device="cuda" if str(args.device).startswith("cuda") else "cpu")
    log(f"familiarity calibration on {', '.join(sources)}:")
    path = calibrate(engine, sources, log=log).save(args.out)
    log(f"wrote {path}")
