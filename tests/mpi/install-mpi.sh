#!/usr/bin/env bash
# Installs the MPI implementations the MoeSharp.Mpi tests run under: Open MPI (mpiexec) and, where the
# distribution offers it, MPICH (mpiexec.mpich). CI calls this before `dotnet test`.
# Idempotent: installs only what is missing. Uses sudo only when not root.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

packages=()
command -v mpiexec.openmpi >/dev/null 2>&1 || packages+=(openmpi-bin libopenmpi-dev)
command -v mpiexec.mpich >/dev/null 2>&1 || packages+=(mpich)

if [ ${#packages[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # MPICH is optional: install Open MPI first so a distribution without MPICH still gets one MPI.
    $SUDO apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev >/dev/null
    $SUDO apt-get install -y -qq --no-install-recommends mpich >/dev/null || echo "MPICH not available; its tests will be skipped"
fi
mpiexec --version | head -n 1
