# Two set-up-free entry points: `make demo` and `make test`. Each builds what is missing first:
# a virtual environment with pinned dependencies (ROS 2 kilted from PyPI wheels, torch CPU, ...),
# the package's ROS interfaces (CMake, installed into the venv) and the package itself.
# A second run skips every step whose inputs did not change.

PYTHON ?= python3
VENV ?= .venv
VENV_ABS := $(abspath $(VENV))
PY := $(VENV_ABS)/bin/python
BUILD_DIR := build/interfaces

# Keep DDS discovery on this machine (kilted ignores ROS_LOCALHOST_ONLY) and never reach for a hub.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

PACKAGE_SOURCES := $(shell find vljepa_ros -name '*.py' 2>/dev/null) setup.py $(wildcard launch/* config/*.yaml ros_executables/*) \
  $(shell find models/small data/demo_tabletop -type f 2>/dev/null)
INTERFACES := $(wildcard msg/*.msg srv/*.srv) CMakeLists.txt

# The ROS 2 command line and launch system (ros2 launch/run/param/topic/lifecycle, launch_testing) are
# not published as wheels. This project keeps their upstream sources in ../shared/ros2-python; where
# that folder sits beside the clone, `make test` installs them into the venv first (idempotent), so the
# tests run the real tools. Without it the tests use a `ros2` on PATH (a ROS 2 install) or skip.
# `make env` never depends on it: a fresh clone works without ../shared.
ROS2_PYTHON ?= ../shared/ros2-python

.PHONY: env ros2cli demo test clean

env: $(VENV)/.package-installed

$(VENV)/.deps-installed: requirements.txt constraints.txt
	@$(PYTHON) -c 'import sys; assert (3, 10) <= sys.version_info[:2] <= (3, 12), "ROS 2 kilted wheels need Python 3.10-3.12"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
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
	@if [ -f "$(ROS2_PYTHON)/install.sh" ]; then bash "$(ROS2_PYTHON)/install.sh" $(VENV); \
	else echo "ros2cli: no $(ROS2_PYTHON): the ros2 command-line tests use a ros2 on PATH or skip"; fi

test: env ros2cli
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf build $(VENV) *.egg-info
