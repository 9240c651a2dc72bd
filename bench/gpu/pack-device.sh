#!/usr/bin/env bash
# Packs the moe CLI for the GPU machine (no .NET there) into .device/ with the workplace's pack-dotnet.sh,
# then points its run.sh at the CLI's assembly, which is named moe.dll rather than after the project.
# Usage: bash bench/gpu/pack-device.sh [path/to/pack-dotnet.sh]
set -euo pipefail
cd "$(dirname "$0")/../.."
pack=${1:-../shared/device/pack-dotnet.sh}
bash "$pack" src/MoeSharp.Cli/MoeSharp.Cli.csproj .device
sed -i 's#app/MoeSharp.Cli.dll#app/moe.dll#' .device/run.sh
grep -q 'app/moe.dll' .device/run.sh
