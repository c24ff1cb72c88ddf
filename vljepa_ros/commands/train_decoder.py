"""`vljepa-ros train-decoder`: train the generative Y-decoder (PrefixDecoder) of a trained model.

    vljepa-ros train-decoder --model models/small --steps 1500
    vljepa-ros train-decoder --model models/small --data tabletop --predicted 2000

The decoder learns to write a text back from its Y-encoder embedding (randomly perturbed, so it tolerates
predicted embeddings), over the model's text bank (banks/answers.txt). With --data it also sees the model's
predicted embeddings of --predicted training clips, paired with their answers. Saved in <model>/decoder/.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-decoder", help="train the generative Y-decoder of a trained model (saved in <model>/decoder)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="trained model directory")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps (default: 1500)")
    parser.add_argument("--batch-size", type=int, default=64, help="texts per step (default: 64)")
    parser.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    parser.add_argument("--max-noise", type=float, default=0.75,
                        help="largest perturbation of a unit text embedding (default: 0.75, cosine >= 0.8)")
    parser.add_argument("--data", default=None, help='"tabletop" or an examples .npz: also train on predicted embeddings')
    parser.add_argument("--predicted", type=int, default=2000, help="clips to embed with --data (default: 2000)")
    parser.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from vljepa_ros.model.checkpoint import DECODER_DIR, load_model, load_text_bank
    from vljepa_ros.model.training import ListSource
    from vljepa_ros.world.training_source import TabletopSource
    from vljepa_ros.model.y_decoder import train_decoder

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    texts = load_text_bank(args.model)
    predicted = None
    if args.data is not None:
        if args.data == "tabletop":
            source = TabletopSource(model.config.frames_per_clip, model.config.image_size, seed=args.seed + 7)
        else:
            from vljepa_ros.world import dataset

            source = ListSource(dataset.load_examples(args.data), seed=args.seed)
        embeddings, answers = [], []
        for start in range(0, args.predicted, 64):
            batch = source.batch(min(64, args.predicted - start))
            embeddings.append(model.embed_clips([e.frames for e in batch], [e.query for e in batch]))
            answers += [e.answer for e in batch]
        predicted = (torch.cat(embeddings), answers)
        texts = sorted(set(texts) | set(answers))

    decoder, losses = train_decoder(model, texts, steps=args.steps, batch_size=args.batch_size,
                                    learning_rate=args.lr, max_noise=args.max_noise, seed=args.seed,
                                    predicted=predicted)
    decoder.save(args.model / DECODER_DIR)
    sample = texts[:: max(1, len(texts) // 5)][:5]
    decoded = decoder.generate(model.embed_texts(sample))
    exact = sum(a == b for a, b in zip(decoder.generate(model.embed_texts(texts)), texts)) / len(texts)
    print(f"decoder: {sum(p.numel() for p in decoder.parameters()) / 1e6:.2f}M params, final loss "
          f"{sum(losses[-50:]) / len(losses[-50:]):.4f}, exact reconstruction of the text bank {exact:.1%}")
    for source_text, text in zip(sample, decoded):
        print(f"  {source_text!r} -> {text!r}")
    print(f"saved {args.model / DECODER_DIR}")
    return 0
