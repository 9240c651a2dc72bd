#!/usr/bin/env bash
# Stop 30, call C: the private grid for every single product with K <= 1024 (lab switches: LAB_PRIVBLOCKS=100000
# LAB_PRIVDEPTH=1024 LAB_PRIVMC=264; A in place or packed) beside the default and MKL, on more shapes (CoreLab big).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
run_shape() { # THREADS CORES M N K
  local t=$1 cores=$2; export LAB_M=$3 LAB_N=$4 LAB_K=$5
  OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t taskset -c $cores python3 $D/lab/mkl_big.py $t
  for cfg in "default" "pall LAB_PRIVBLOCKS=100000 LAB_PRIVDEPTH=1024 LAB_PRIVMC=264" "pallpackA LAB_PRIVBLOCKS=100000 LAB_PRIVDEPTH=1024 LAB_PRIVMC=264 LAB_PACKA=1"; do
    set -- $cfg
    env LAB_TAG=$1 "${@:2}" DOTNET_ROOT=$rt timeout 90 taskset -c $cores $rt/dotnet $D/lab/big/MoeSharp.Benchmarks.dll x $t big
  done
}
for r in 1 2; do
  echo "== round $r"
  run_shape 16 0-15 1024 1024 1024
  run_shape 16 0-15 4096 1024 1024
  run_shape 16 0-15 1024 4096 1024
  run_shape 16 0-15 4096 512 512
  run_shape 2 2,3 1024 1024 1024
done 2>&1 | tee $OUT/c.txt
date -u
