#!/usr/bin/env bash
# Lay out the pinned upstream sources of the ROS 2 command line for one distribution, one folder a package:
#
#   scripts/fetch_ros2cli_sources.sh DISTRO DEST [PINS]     # PINS: default scripts/ros2cli-sources.txt
#
# Each repository of PINS is fetched with git at its pinned commit only (a shallow fetch of that commit, which
# GitHub serves by id) and the checkout is verified to be that commit. scripts/install_ros2cli.sh runs this
# when no local mirror is given. Exit 3, with what to do instead, when a repository cannot be reached.
set -euo pipefail
distro=${1:?usage: fetch_ros2cli_sources.sh DISTRO DEST [PINS]}
dest=${2:?usage: fetch_ros2cli_sources.sh DISTRO DEST [PINS]}
list=${3:-$(cd "$(dirname "$0")" && pwd)/ros2cli-sources.txt}
pins=$(awk -v d="$distro" '$1 == d' "$list")
[ -n "$pins" ] || { echo "fetch_ros2cli_sources: no pinned sources for ROS 2 '$distro' in $list" >&2; exit 2; }

mkdir -p "$dest"
repos=$(mktemp -d)
trap 'rm -rf "$repos"' EXIT
while read -r _ url commit specs; do
  checkout="$repos/$(basename "$url")"
  git init --quiet "$checkout"
  if ! error=$(git -C "$checkout" fetch --quiet --depth 1 "$url" "$commit" 2>&1); then
    echo "fetch_ros2cli_sources: could not fetch $url at $commit: ${error##*$'\n'}" >&2
    echo "fetch_ros2cli_sources: without access to it, use a local copy of the same sources:" \
         "make ros2cli ROS2_PYTHON=/path/to/copy (laid out as src/<package> for kilted, jazzy/src/<package> for jazzy)" >&2
    exit 3
  fi
  git -C "$checkout" -c advice.detachedHead=false checkout --quiet FETCH_HEAD
  [ "$(git -C "$checkout" rev-parse HEAD)" = "$commit" ] || { echo "fetch_ros2cli_sources: $url gave another commit than $commit" >&2; exit 1; }
  for spec in $specs; do
    name=${spec%%=*}; path=${spec#*=}
    [ -d "$checkout/$path" ] || { echo "fetch_ros2cli_sources: $url at $commit has no folder '$path'" >&2; exit 1; }
    rm -rf "${dest:?}/$name"
    cp -r "$checkout/$path" "$dest/$name"
    rm -rf "$dest/$name/.git"
  done
done <<<"$pins"
