#!/usr/bin/env bash
# Stop 30, call F: the layer's grouped products on the private grid (LAB_GPRIV=1: every grouped call of fewer products
# than two per thread, all K <= 1024, as one pass of private blocks) beside the shared pass, CoreLab grouped and MKL's
# per-expert loop; then the layer step (moe train) with and without it. 16 threads on cores 0-15, three alternations.
# (The build was 8a1a01c with RunPrivateGrid taking several products and a LAB_GPRIV switch in RunMany; the commit
# after it replaced the switch with the rule "packed operands past one wave".)
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
lab() { env "$@" DOTNET_ROOT=$rt timeout 90 taskset -c 0-15 $rt/dotnet $D/lab/grp/MoeSharp.Benchmarks.dll x 16 grouped; }
train() { env "$@" MOESHARP_THREADS=16 taskset -c 0-15 bash $D/run.sh train --steps 8 --shared-hidden 0 --log-every 100000 \
  --tokens $T --dim $DIM --hidden $DIM --experts 16 --top-k 2 | grep -E "step time|final loss" | tr '\n' ' '; echo; }
for r in 1 2 3; do
  echo "== round $r"
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/lab/mkl_grouped.py 1024 16 16 1024 1
  LAB_TAG=shared lab
  LAB_TAG=gpriv LAB_GPRIV=1 lab
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/lab/mkl_grouped.py 256 16 16 512 1
  LAB_M=256 LAB_N=512 LAB_K=512 LAB_TAG=shared lab
  LAB_M=256 LAB_N=512 LAB_K=512 LAB_TAG=gpriv LAB_GPRIV=1 lab
  for T in 2048 8192; do
    DIM=$([[ $T == 2048 ]] && echo 512 || echo 1024)
    echo -n "layer T $T shared: "; T=$T DIM=$DIM train LAB_X=0
    echo -n "layer T $T gpriv:  "; T=$T DIM=$DIM train LAB_GPRIV=1
  done
done 2>&1 | tee $OUT/f.txt
date -u
