#!/usr/bin/env bash
# Packs the moe CLI for the GPU machine (no .NET there) into .device/ with the workplace's pack-dotnet.sh,
# then points its run.sh at the CLI's assembly, which is named moe.dll rather than after the project, and adds the
# GPU-only unit tests' runner (run-gpu-tests.sh).
# Usage: bash bench/gpu/pack-device.sh [path/to/pack-dotnet.sh]
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=${1:-../shared/device/pack-dotnet.sh}
bash "$pack" src/MoeSharp.Cli/MoeSharp.Cli.csproj .device
sed -i 's#app/MoeSharp.Cli.dll#app/moe.dll#' .device/run.sh
grep -q 'app/moe.dll' .device/run.sh
# The GPU-only unit tests, run by tests/MoeSharp.Cuda.GpuRunner on the same runtime: bash .device/run-gpu-tests.sh
rm -rf .device/gpu-tests
dotnet publish tests/MoeSharp.Cuda.GpuRunner/MoeSharp.Cuda.GpuRunner.csproj -c Release -r linux-x64 --self-contained false \
  -o .device/gpu-tests -p:DebugType=none >&2
sed 's#app/moe.dll#gpu-tests/MoeSharp.Cuda.GpuRunner.dll#' .device/run.sh > .device/run-gpu-tests.sh
grep -q 'gpu-tests/MoeSharp.Cuda.GpuRunner.dll' .device/run-gpu-tests.sh
