import threading

import pytest

from vljepa_ros.stream.keep_latest import KeepLatestWorker


def test_newest_item_replaces_waiting_one_and_drops_are_counted():
    release = threading.Event()
    started = threading.Event()
    seen: list[int] = []

    def process(item: int) -> None:
        started.set()
        release.wait(5)
        seen.append(item)

    worker = KeepLatestWorker(process)
    worker.submit(0)                      # taken at once, blocks in process()
    assert started.wait(5)
    assert worker.submit(1)               # waits
    assert not worker.submit(2)           # replaces 1
    assert not worker.submit(3)           # replaces 2
    release.set()
    assert worker.wait_idle(5)
    worker.stop()
    assert seen[-1] == 3 and 1 not in seen and 2 not in seen
    assert worker.dropped == 2 and worker.submitted == 4 and worker.processed == len(seen)


def test_errors_are_reported_and_the_worker_keeps_going():
    errors: list[str] = []
    done: list[int] = []

    def process(item: int) -> None:
        if item == 0:
            raise ValueError("bad clip")
        done.append(item)

    worker = KeepLatestWorker(process, on_error=lambda item, error: errors.append(str(error)))
    worker.submit(0)
    assert worker.wait_idle(5)
    worker.submit(1)
    assert worker.wait_idle(5)
    worker.stop()
    assert errors == ["bad clip"] and done == [1] and worker.failed == 1


@pytest.mark.parametrize("count", [50])
def test_every_submission_is_processed_or_counted(count):
    processed: list[int] = []
    worker = KeepLatestWorker(processed.append)
    for item in range(count):
        worker.submit(item)
    assert worker.wait_idle(5)
    worker.stop()
    assert len(processed) + worker.dropped == count
    assert processed[-1] == count - 1
