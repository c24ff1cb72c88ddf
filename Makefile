# Two set-up-free entry points: `make demo` and `make test`. Each builds what is missing first:
# a virtual environment with pinned dependencies (ROS 2 from PyPI wheels, torch CPU, ...),
# the package's ROS interfaces (CMake, installed into the venv) and the package itself.
# A second run skips every step whose inputs did not change.
#
# ROS_DISTRO picks the ROS 2 wheels: jazzy (default, the long-term release most robots run, in .venv) or
# kilted (in .venv-kilted; `make test-kilted` is `make test ROS_DISTRO=kilted`). The two distributions'
# wheels install the same module names, so each gets a venv of its own.

PYTHON ?= python3
ROS_DISTRO ?= jazzy
SUPPORTED_DISTROS := kilted jazzy
ifeq ($(filter $(ROS_DISTRO),$(SUPPORTED_DISTROS)),)
$(error ROS_DISTRO=$(ROS_DISTRO): the pip route has ROS 2 wheels for $(SUPPORTED_DISTROS) only (README, Install routes); \
  run with ROS_DISTRO=kilted or ROS_DISTRO=jazzy, or build with colcon on an apt install)
endif
VENV ?= $(if $(filter jazzy,$(ROS_DISTRO)),.venv,.venv-$(ROS_DISTRO))
VENV_ABS := $(abspath $(VENV))
PY := $(VENV_ABS)/bin/python
BUILD_DIR := build/interfaces-$(ROS_DISTRO)

# Keep DDS discovery on this machine (kilted ignores ROS_LOCALHOST_ONLY) and never reach for a hub.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

PACKAGE_SOURCES := $(shell find vljepa_ros -name '*.py' 2>/dev/null) setup.py $(wildcard launch/* config/*.yaml ros_executables/*) \
  $(shell find models/small data/demo_tabletop -type f 2>/dev/null)
INTERFACES := $(wildcard msg/*.msg srv/*.srv) CMakeLists.txt

# The ROS 2 command line and launch system (ros2 launch/run/param/topic/lifecycle, launch_testing) are
# not published as wheels. `make ros2cli` builds them into the venv (scripts/install_ros2cli.sh) from the
# upstream sources pinned in scripts/ros2cli-sources.txt: from a local mirror of them when ROS2_PYTHON names
# one (the default, ../shared/ros2-python, sits beside the clone on this project's machines and CI), else
# from their public repositories (git, needs github.com; ROS2_PYTHON=upstream forces that route).
# `make test` runs it and goes on without it when it fails (the ros2 tests then skip, saying why);
# `make env` and `make demo` never need it.
ROS2_PYTHON ?= ../shared/ros2-python
ROS2CLI_SOURCE := $(if $(filter upstream,$(ROS2_PYTHON)),,$(if $(or $(wildcard $(ROS2_PYTHON)),$(filter-out file,$(origin ROS2_PYTHON))),$(ROS2_PYTHON)))

.PHONY: env ros2cli demo test test-ros test-jazzy test-kilted clean

env: $(VENV)/.package-installed

$(VENV)/.deps-installed: requirements.txt constraints.txt requirements-$(ROS_DISTRO).txt constraints-$(ROS_DISTRO).txt
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), "ROS 2 $(ROS_DISTRO) wheels need Python 3.10-3.12"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# Installing one distribution's wheels over the other's would leave a mix of both: refuse.
	@installed=$$(env -u ROS_DISTRO $(PY) vljepa_ros/ros_distro.py); if [ -n "$$installed" ] && [ "$$installed" != $(ROS_DISTRO) ]; then \
	  echo "$(VENV) holds ROS 2 $$installed, not $(ROS_DISTRO): name another VENV, or remove this one" >&2; exit 1; fi
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-$(ROS_DISTRO).txt
	touch $@

$(VENV)/.interfaces-installed: $(VENV)/.deps-installed $(INTERFACES) scripts/patch_ros_cmake.py
	$(PY) scripts/patch_ros_cmake.py $(VENV_ABS)
	cmake -S . -B $(BUILD_DIR) -DCMAKE_INSTALL_PREFIX=$(VENV_ABS) -DCMAKE_PREFIX_PATH=$(VENV_ABS) \
	  -DPython3_EXECUTABLE=$(PY) -DBUILD_TESTING=OFF -DVLJEPA_ROS_INTERFACES_ONLY=ON > /dev/null
	cmake --build $(BUILD_DIR) -j2 > $(BUILD_DIR).log 2>&1 || (tail -40 $(BUILD_DIR).log; exit 1)
	cmake --install $(BUILD_DIR) > /dev/null
	@# rosidl registers the generated code as a 'vljepa_ros' egg; pip would treat it as an older
	@# install of this package and delete msg/ and srv/ when installing setup.py's. Keep only the files.
	rm -rf $(VENV_ABS)/lib/python3*/site-packages/vljepa_ros-*.egg-info
	touch $@

$(VENV)/.package-installed: $(VENV)/.interfaces-installed $(PACKAGE_SOURCES)
	rm -rf build/lib  # setuptools never prunes modules deleted from the source tree
	$(PY) -m pip install --quiet --no-deps --no-build-isolation .
	$(PY) -c "import vljepa_ros.msg, vljepa_ros.srv"
	touch $@

demo: env
	$(VENV_ABS)/bin/vljepa-ros demo

ros2cli: env
	bash scripts/install_ros2cli.sh $(VENV) $(ROS2CLI_SOURCE)

test: env
	@$(MAKE) --no-print-directory ros2cli || echo "make test: no ros2 command line (above: why); the ros2 tests will skip"
	$(PY) -m pytest $(PYTEST_ARGS)

# The test modules that touch ROS: they import rclpy, the ROS test helpers, launch, the nodes, the
# generated interfaces or rosbags (nodes as processes, signals, losses, lifecycle, launch and ros2
# CLI tests, colcon build, bag round trips). .ci/run runs these on its second distribution.
ROS_TESTS = $(shell grep -l -E '^\s*(from|import) (rclpy|ros_testing|ros2_cli_testing|launch|rosbags)\b|vljepa_ros\.(nodes|msg|srv)\b' test/test_*.py)

test-ros: env
	@$(MAKE) --no-print-directory ros2cli || echo "make test-ros: no ros2 command line (above: why); the ros2 tests will skip"
	$(PY) -m pytest $(ROS_TESTS) $(PYTEST_ARGS)

# The default distribution by name, and Kilted (short-term, support ends 2026-12) in .venv-kilted
# (README, Install routes).
test-jazzy:
	$(MAKE) test ROS_DISTRO=jazzy

test-kilted:
	$(MAKE) test ROS_DISTRO=kilted

clean:
	rm -rf build $(VENV) *.egg-info
