#!/usr/bin/env bash
# Stop 31, call B: the private grid packing blocks over 2 MiB in chunks of 384 (c384) or 512 (c512) steps, beside
# 29d80bf (old): CoreLab big (lone 1024^3) and grouped (16 x 1024^3) at 16 threads, MKL beside them, three
# alternations; then the T 8192 layer step (moe train) with old and c384.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
lab() { b=$1; shift; env "$@" LAB_TAG=$b DOTNET_ROOT=$rt timeout 90 taskset -c 0-15 $rt/dotnet $D/lab/$b/MoeSharp.Benchmarks.dll x 16 ${FORM}; }
for b in old c384; do rm -rf /tmp/dev-$b; cp -r $D /tmp/dev-$b; cp $D/lab/$b/MoeSharp.dll /tmp/dev-$b/app/MoeSharp.dll; done
train() { MOESHARP_THREADS=16 taskset -c 0-15 bash /tmp/dev-$1/run.sh train --steps 8 --shared-hidden 0 --log-every 100000 \
  --tokens 8192 --dim 1024 --hidden 1024 --experts 16 --top-k 2 | grep -E "step time|final loss" | tr '\n' ' '; echo; }
for r in 1 2; do
  echo "== round $r"
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 LAB_ROUNDS=3 taskset -c 0-15 python3 $D/lab/mkl_big.py 16 2>&1 | tail -1
  for b in old c384 c512; do FORM=big LAB_ROUNDS=3 lab $b; done
  OMP_NUM_THREADS=16 MKL_NUM_THREADS=16 taskset -c 0-15 python3 $D/lab/mkl_grouped.py 1024 16 16 1024 1 2>&1 | tail -1
  for b in old c384 c512; do FORM=grouped LAB_ROUNDS=2 lab $b; done
done 2>&1 | tee $OUT/b.txt
for r in 1; do for b in old c384; do echo -n "train T8192 $b: "; train $b; done; done 2>&1 | tee -a $OUT/b.txt
date -u
