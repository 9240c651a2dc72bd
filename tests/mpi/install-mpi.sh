#!/usr/bin/env bash
# Installs Open MPI for the MoeSharp.Mpi tests (CI calls this before `dotnet test`).
# Idempotent: does nothing when mpiexec is already on PATH. Uses sudo only when not root.
set -euo pipefail

if command -v mpiexec >/dev/null 2>&1; then
    echo "mpiexec already installed: $(command -v mpiexec)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq openmpi-bin libopenmpi-dev
mpiexec --version | head -n 1
