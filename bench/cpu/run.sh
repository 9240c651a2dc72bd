#!/usr/bin/env bash
# MoeSharp next to its PyTorch peer on this machine's CPUs, at 2 threads and at every core (bench/RESULTS-cpu.md).
#   bash bench/cpu/run.sh [extra compare.py options]
# MOE: how to start moe (default: the Release build of src/MoeSharp.Cli); PYTHON: an interpreter with torch
# (default /usr/bin/python3). On Debian, python3-torch links the reference BLAS: when OpenBLAS is installed
# (libopenblas0-pthread) the peer is run against it, so the peer's products are not 50x slower than they should be.
set -euo pipefail
cd "$(dirname "$0")/../.."
MOE=${MOE:-"dotnet src/MoeSharp.Cli/bin/Release/net10.0/moe.dll"}
PYTHON=${PYTHON:-/usr/bin/python3}
OPENBLAS_DIR=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [[ -z "${NO_OPENBLAS:-}" && -e "$OPENBLAS_DIR/libblas.so.3" ]]; then
    export LD_LIBRARY_PATH="$OPENBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(uptime)"
"$PYTHON" -c 'import torch; print("torch", torch.__version__)'
exec "$PYTHON" bench/cpu/compare.py --moe "$MOE" --python "$PYTHON" "$@"
