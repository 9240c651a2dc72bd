#!/usr/bin/env bash
# Packs every packable project into a local feed, installs the moe .NET tool from that feed into a fresh folder and runs
# it from there, as a user who installed MoeSharp.Tool would. Run after a Release build of the solution (as .ci/run does);
# pass --build to build here instead.
set -euo pipefail
cd "$(dirname "$0")/.."
build=--no-build
[[ "${1:-}" == "--build" ]] && build=
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
feed=$work/feed tools=$work/tools
dotnet pack MoeSharp.slnx -c Release $build -o "$feed"
for id in MoeSharp MoeSharp.Mpi MoeSharp.Cuda MoeSharp.Tool; do
  ls "$feed/$id".[0-9]*.nupkg "$feed/$id".[0-9]*.snupkg >/dev/null || { echo "check-packages: no $id package" >&2; exit 1; }
done
ls -l "$feed"
# Untagged clones get a MinVer prerelease (0.0.0-alpha.0.N): --prerelease accepts it, and a release too.
dotnet tool install --tool-path "$tools" --add-source "$feed" --prerelease MoeSharp.Tool
"$tools/moe" --version
"$tools/moe" run
"$tools/moe" verify-golden
