"""The banks saved beside a model are the ones the nodes read: every label and caption the world
produces is in them, and they read back line by line."""
from vljepa_ros.model.checkpoint import save_banks
from vljepa_ros.world import tabletop


def test_deployment_banks_cover_the_world_and_round_trip(tmp_path):
    banks = tabletop.deployment_banks()
    stream = tabletop.generate_stream(seed=1_000_007, num_episodes=3, image_size=32)
    for segment in stream.segments:
        assert segment.label in banks["labels"] and segment.label in banks["actions"]
        assert set(segment.captions) <= set(banks["captions"])
    save_banks(tmp_path, banks)
    for name, texts in banks.items():
        lines = (tmp_path / "banks" / f"{name}.txt").read_text().splitlines()
        assert lines == texts and all(line.strip() == line and line for line in lines)
