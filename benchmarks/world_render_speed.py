"""Frames per second of the tabletop world: simulation + rendering (+ noise), at a few image sizes.

    .venv/bin/python benchmarks/world_render_speed.py
"""
from __future__ import annotations

import time

from vljepa_ros.world import tabletop


def main() -> None:
    for image_size in (64, 96, 128):
        tabletop.generate_stream(seed=0, num_episodes=1, image_size=image_size)  # warm-up
        start = time.perf_counter()
        stream = tabletop.generate_stream(seed=1, num_episodes=10, image_size=image_size)
        elapsed = time.perf_counter() - start
        print(f"{image_size:4d} px: {stream.frame_count / elapsed:8.0f} frames/s "
              f"({stream.frame_count} frames, {stream.duration_s:.0f} s of stream in {elapsed:.2f} s)")


if __name__ == "__main__":
    main()
