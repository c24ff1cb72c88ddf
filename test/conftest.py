"""Test-session set-up shared by every test.

ROS traffic stays on this machine (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST; kilted ignores
ROS_LOCALHOST_ONLY) and on a ROS_DOMAIN_ID reserved for this pytest run, so parallel runs on one
machine never hear each other. Child processes inherit both through os.environ.
"""
from __future__ import annotations

import contextlib
import os

import pytest

from model_fixtures import tiny_model_dir  # noqa: F401  (a session fixture for every test module)

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Two cores, several processes: one torch thread each keeps multi-process tests from thrashing.
os.environ.setdefault("OMP_NUM_THREADS", "1")

_domain_reservation = contextlib.ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    try:
        from domain_coordinator import domain_id
    except ImportError:  # only the ROS-free tests can run without the ROS wheels
        os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))
        return
    os.environ["ROS_DOMAIN_ID"] = str(_domain_reservation.enter_context(domain_id()))


def pytest_unconfigure(config: pytest.Config) -> None:
    _domain_reservation.close()


def pytest_report_header(config: pytest.Config) -> str:
    return (f"ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID')} "
            f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')}")

