#!/usr/bin/env bash
# Stop 30, call B: one 1024^3 product at 16 threads (CoreLab big, lab-patched build): the shared pass (default) beside
# the private grid at K 1024 (each task packs its own B over the whole reduction; A in place or packed; 16 blocks of
# 264 x 256 or 32 of 132 x 256), and MKL's torch.matmul; processes alternating, three times, on cores 0-15.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
lab() { DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/lab/big/MoeSharp.Benchmarks.dll x 16 big; }
date -u
for r in 1 2 3; do
  echo "== round $r"
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/lab/mkl_big.py 16
  LAB_TAG=default lab
  LAB_TAG=p264 LAB_PRIVBLOCKS=3 LAB_PRIVDEPTH=1024 LAB_PRIVMC=264 lab
  LAB_TAG=p264packA LAB_PRIVBLOCKS=3 LAB_PRIVDEPTH=1024 LAB_PRIVMC=264 LAB_PACKA=1 lab
  LAB_TAG=p132 LAB_PRIVBLOCKS=3 LAB_PRIVDEPTH=1024 lab
  LAB_TAG=p132packA LAB_PRIVBLOCKS=3 LAB_PRIVDEPTH=1024 LAB_PACKA=1 lab
done 2>&1 | tee $OUT/b.txt
date -u
