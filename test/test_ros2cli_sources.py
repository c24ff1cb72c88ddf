"""Where `make ros2cli` takes the ROS 2 command line from: the pinned upstream commits
(scripts/ros2cli-sources.txt, fetched by scripts/fetch_ros2cli_sources.sh) or a local mirror of them.

github.com cannot be reached from these machines, so the git route runs here against local repositories
(the same commands, a file:// address); the mirror route is what `make test` itself installs in CI.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from ros_testing import REPO_ROOT

PINS = REPO_ROOT / "scripts" / "ros2cli-sources.txt"
FETCH = REPO_ROOT / "scripts" / "fetch_ros2cli_sources.sh"
MIRROR_MANIFEST = REPO_ROOT.parent / "shared" / "ros2-python" / "SOURCES.md"
requires_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def pinned(distro: str) -> list[tuple[str, str, list[str]]]:
    """(repository, commit, package specs) of `distro` in scripts/ros2cli-sources.txt."""
    rows = [line.split() for line in PINS.read_text().splitlines() if line and not line.startswith("#")]
    return [(row[1], row[2], row[3:]) for row in rows if row[0] == distro]


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


def fetch(distro: str, dest: Path, pins: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(FETCH), distro, str(dest), str(pins)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("distro", ["kilted", "jazzy"])
def test_each_distribution_pins_every_package_the_installer_builds(distro):
    packages = {spec.split("=")[0] for _, _, specs in pinned(distro) for spec in specs}
    assert {"ros2cli", "ros2launch", "launch", "launch_ros", "launch_testing", "composition_interfaces",
            "rosidl_runtime_py"} <= packages
    assert all(re.fullmatch(r"[0-9a-f]{40}", commit) for _, commit, _ in pinned(distro))


@pytest.mark.skipif(not MIRROR_MANIFEST.is_file(), reason="no ../shared/ros2-python beside this clone to compare with")
def test_the_pins_are_the_commits_of_the_mirror_ci_installs():
    manifest = MIRROR_MANIFEST.read_text()
    jazzy_part = manifest.index("## jazzy/src")
    for distro, part in (("kilted", manifest[:jazzy_part]), ("jazzy", manifest[jazzy_part:])):
        for url, commit, _ in pinned(distro):
            repository = url.removeprefix("https://")
            assert re.search(rf"{re.escape(repository)} \(\w+ branch\) \| {commit}", part), (distro, url, commit)


@requires_git
def test_sources_are_laid_out_from_the_pinned_commit_not_the_newest(tmp_path):
    upstream = tmp_path / "launch"
    (upstream / "launch").mkdir(parents=True)
    (upstream / "launch" / "setup.py").write_text("pinned\n")
    (upstream / "setup.py").write_text("the repository root is a package too\n")
    git("init", "--quiet", cwd=upstream)
    git("add", ".", cwd=upstream)
    git("commit", "--quiet", "-m", "pinned", cwd=upstream)
    commit = git("rev-parse", "HEAD", cwd=upstream)
    (upstream / "launch" / "setup.py").write_text("newer\n")
    git("commit", "--quiet", "-am", "newer", cwd=upstream)
    pins = tmp_path / "pins.txt"
    pins.write_text(f"# distro repository commit packages\njazzy file://{upstream} {commit} launch root_package=.\n"
                    f"kilted file://{upstream} {git('rev-parse', 'HEAD', cwd=upstream)} launch\n")

    result = fetch("jazzy", tmp_path / "src", pins)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "src" / "launch" / "setup.py").read_text() == "pinned\n"
    assert (tmp_path / "src" / "root_package" / "setup.py").is_file()
    assert not (tmp_path / "src" / "root_package" / ".git").exists()


@requires_git
def test_an_unreachable_repository_stops_with_what_to_use_instead(tmp_path):
    pins = tmp_path / "pins.txt"
    pins.write_text(f"jazzy file://{tmp_path}/no-such-repository {'0' * 40} launch\n")
    result = fetch("jazzy", tmp_path / "src", pins)
    assert result.returncode == 3
    assert "could not fetch" in result.stderr and "make ros2cli ROS2_PYTHON=" in result.stderr
    assert fetch("lyrical", tmp_path / "src", pins).returncode == 2  # no pins for it: said so
