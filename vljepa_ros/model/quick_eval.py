"""Quick held-out checks of a trained model on the tabletop world (the full evaluation lives in `vljepa-ros eval`).

    python -m vljepa_ros.model.quick_eval models/small [--episodes 24] [--seed 1000001]

On held-out seeds (never used by `train`):
  classification  a clip from the middle of each segment with the caption query -> nearest label of the
                  world's label bank; top-1 / top-5 accuracy (chance 1 / len(label bank)).
  retrieval       each segment's label -> nearest of all the segment clips; recall@1 counts a clip of the
                  same label as a hit (chance about 1 / number of clips).
  inverse dynamics make_action_clip(before, after) with the action query -> the nearest of the 4 candidate
                  actions (chance 25%).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch


@torch.no_grad()
def quick_eval(model, seed: int = 1_000_001, episodes: int = 24) -> dict[str, float]:
    from vljepa_ros.world import dataset, tabletop

    if not dataset.is_held_out_seed(seed):
        raise ValueError(f"seed {seed} is a training seed; use >= {dataset.HELD_OUT_SEED_START}")
    model.eval()
    fpc = model.config.frames_per_clip
    stream = tabletop.generate_stream(seed, episodes, image_size=model.config.image_size)
    labels = tabletop.label_bank()
    label_embeddings = model.embed_texts(labels)

    clips, clip_labels = [], []
    for segment in stream.segments:
        # The centred clip of the segment (spread over the whole segment when it is shorter than a clip).
        length = segment.end_index - segment.start_index
        start = segment.start_index + max(0, (length - fpc) // 2)
        indices = dataset.sample_clip_indices(np.random.default_rng(0), start, min(start + fpc, segment.end_index), fpc)
        clips.append(stream.frames[indices])
        clip_labels.append(segment.label)
    predicted = torch.cat([model.embed_clips(clips[i : i + 64], dataset.CAPTION_QUERY) for i in range(0, len(clips), 64)])
    scores = predicted @ label_embeddings.T
    truth = torch.tensor([labels.index(label) for label in clip_labels])
    top5 = scores.topk(5, dim=1).indices
    results = {
        "classification_top1": float((top5[:, 0] == truth).float().mean()),
        "classification_top5": float((top5 == truth[:, None]).any(1).float().mean()),
        "classification_chance": 1.0 / len(labels),
    }

    unique_labels = sorted(set(clip_labels))
    text_embeddings = model.embed_texts(unique_labels)
    best_clip = (text_embeddings @ predicted.T).argmax(dim=1)
    results["retrieval_text_to_clip_r1"] = float(np.mean([clip_labels[int(c)] == t for t, c in zip(unique_labels, best_clip)]))
    results["retrieval_chance"] = float(np.mean([clip_labels.count(t) / len(clip_labels) for t in unique_labels]))

    action_clips = [dataset.make_action_clip(stream.frames[a.before_index], stream.frames[a.after_index], fpc)
                    for a in stream.action_items]
    states = torch.cat([model.embed_clips(action_clips[i : i + 64], dataset.ACTION_QUERY)
                        for i in range(0, len(action_clips), 64)])
    correct = []
    for state, item in zip(states, stream.action_items):
        candidates = model.embed_texts(item.candidates)
        correct.append(int((candidates @ state).argmax()) == item.answer_index)
    results["inverse_dynamics_4way"] = float(np.mean(correct))
    results["inverse_dynamics_chance"] = 0.25
    results["segments"] = len(clips)
    results["action_items"] = len(action_clips)
    results["held_out_seed"] = seed
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--seed", type=int, default=1_000_001)
    parser.add_argument("--episodes", type=int, default=24)
    args = parser.parse_args()
    from .checkpoint import load_model

    print(json.dumps(quick_eval(load_model(args.model_dir), args.seed, args.episodes), indent=1))


if __name__ == "__main__":
    main()
