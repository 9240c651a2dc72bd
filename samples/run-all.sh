#!/usr/bin/env bash
# Builds (unless --no-build) and runs every sample (dotnet test builds only the test projects, so CI needs this). The
# dispatcher sample also runs as an MPI job of two processes when mpiexec is installed; without it, that run is skipped
# with a message. Each sample checks its own results and exits non-zero when one is wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" != "--no-build" ]]; then
  for p in samples/*/*.csproj; do dotnet build "$p" -c Release -v q -nologo; done
fi
bin() { echo "samples/$1/bin/Release/net10.0/$1.dll"; }
# The README's dispatcher snippet is the sample's code between its README markers: every line must be in README.md.
sed -n '/README: the dispatcher/,/README: end/p' samples/CustomExperts/Program.cs | sed '1d;$d;s/^    //' |
  while IFS= read -r line; do
    grep -qxF -- "$line" README.md || { echo "README.md lacks the sample's line: $line" >&2; exit 1; }
  done
for sample in CustomExperts TrainLayer LoadCheckpoint; do
  echo "== $sample"
  dotnet "$(bin "$sample")"
done
echo "== CustomExperts --mpi (mpiexec -n 2)"
if ! command -v mpiexec >/dev/null; then
  echo "skipped: mpiexec not found (install Open MPI or MPICH to run the MPI sample)"
  exit 0
fi
extra=()
# Open MPI refuses more processes than cores unless told; MPICH has no such flag.
mpiexec --version 2>&1 | grep -qi "open mpi" && extra=(--oversubscribe)
# .NET switches a terminal to application-cursor mode (ESC[?1h) on the pseudo-terminal mpiexec gives each rank.
TERM=dumb timeout 120 mpiexec "${extra[@]}" -n 2 dotnet "$(bin CustomExperts)" --mpi
