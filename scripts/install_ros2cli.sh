#!/usr/bin/env bash
# Install the ROS 2 command line (`ros2 launch/run/param/node/topic/service/lifecycle/interface/pkg/action`),
# the launch system (launch, launch_xml, launch_yaml, launch_ros, launch_testing, launch_testing_ros,
# launch_pytest), rosidl_runtime_py and composition_interfaces into a venv that already holds one
# distribution's ROS 2 wheels with their CMake exports patched (`make env`). None of them has a wheel.
#
#   scripts/install_ros2cli.sh VENV           # the pinned upstream sources: each repository of
#                                             # scripts/ros2cli-sources.txt at its commit, fetched with git by
#                                             # scripts/fetch_ros2cli_sources.sh (needs github.com)
#   scripts/install_ros2cli.sh VENV MIRROR    # a local copy of the same sources, laid out as
#                                             # ../shared/ros2-python: MIRROR/src (kilted), MIRROR/jazzy/src
#
# The distribution is the venv's (vljepa_ros/ros_distro.py). Idempotent: a second run with the same sources
# does nothing, and does not reach the network. `make ros2cli` runs this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(cd "${1:?usage: install_ros2cli.sh VENV [MIRROR]}" && pwd)
mirror=${2:-}
py="$venv/bin/python"
[ -x "$py" ] || { echo "install_ros2cli: $venv has no bin/python" >&2; exit 2; }
"$py" -c "import rclpy, rosidl_generator_py" 2>/dev/null || {
  echo "install_ros2cli: $venv lacks rclpy or the rosidl generators: run \`make env\` first" >&2; exit 2; }
distro=$(env -u ROS_DISTRO "$py" "$root/vljepa_ros/ros_distro.py")
pins=$(awk -v d="$distro" '$1 == d' "$root/scripts/ros2cli-sources.txt")
[ -n "$pins" ] || { echo "install_ros2cli: no pinned sources for ROS 2 '$distro' in scripts/ros2cli-sources.txt" >&2; exit 2; }
packages=$(awk '{for (i = 4; i <= NF; i++) {split($i, p, "="); print p[1]}}' <<<"$pins")

# What would be installed: the pins themselves (upstream) or the mirror's files. Same as last time: done.
if [ -n "$mirror" ]; then
  [ -d "$mirror" ] || { echo "install_ros2cli: mirror $mirror does not exist" >&2; exit 2; }
  src="$mirror/$distro/src"
  [ -d "$src" ] || [ "$distro" != kilted ] || src="$mirror/src"  # ../shared/ros2-python keeps Kilted at src/
  for p in $packages; do
    [ -d "$src/$p" ] || { echo "install_ros2cli: $src/$p missing (mirror $mirror, ROS 2 $distro)" >&2; exit 2; }
  done
  identity=$(cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)
else
  identity=$pins
fi
digest=$( (echo "$identity"; cat "$0") | sha256sum | cut -c1-16)
stamp="$venv/.ros2cli-installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$digest" ]; then exit 0; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$work/install.log"
mkdir "$work/src"
if [ -n "$mirror" ]; then
  for p in $packages; do cp -r "$src/$p" "$work/src/$p"; done
  chmod -R u+w "$work/src"  # the mirror may be read-only (it is for CI)
  origin="mirror $mirror"
else
  bash "$root/scripts/fetch_ros2cli_sources.sh" "$distro" "$work/src"
  origin="upstream repositories at the commits of scripts/ros2cli-sources.txt"
fi

# Pure-Python packages (setup.py each): their share/ files (package.xml, ament index markers, launch
# frontends' resources) land under the venv prefix, which is what AMENT_PREFIX_PATH must name.
"$py" -c "import setuptools" 2>/dev/null \
  || "$py" -m pip install --quiet -c "$root/constraints.txt" setuptools >"$log" 2>&1 || { tail -30 "$log"; exit 1; }
python_packages=()
for p in $packages; do [ "$p" = composition_interfaces ] || python_packages+=("$work/src/$p"); done
"$py" -m pip install --quiet --no-deps --no-build-isolation "${python_packages[@]}" >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }
"$py" -m pip install --quiet -c "$root/constraints.txt" osrf-pycommon argcomplete psutil >>"$log" 2>&1 || { tail -30 "$log"; exit 1; }

# composition_interfaces (launch_ros imports it) is a rosidl package: generate and install it with CMake.
cmake -S "$work/src/composition_interfaces" -B "$work/build" -DCMAKE_INSTALL_PREFIX="$venv" \
  -DCMAKE_PREFIX_PATH="$venv" -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF >"$log" 2>&1 || { tail -30 "$log"; exit 1; }
cmake --build "$work/build" -j2 >"$log" 2>&1 || { tail -30 "$log"; exit 1; }
cmake --install "$work/build" >/dev/null
# rosidl registers generated code as an egg; keep only the files (as the Makefile does for our interfaces).
rm -rf "$venv"/lib/python3*/site-packages/composition_interfaces-*.egg-info

"$py" -c "import launch, launch_ros, composition_interfaces.srv, ros2cli, rosidl_runtime_py"
echo "$digest" >"$stamp"
echo "ros2 command line and launch (ROS 2 $distro, from $origin) installed into $venv: run it as $venv/bin/ros2"
