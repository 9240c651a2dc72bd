#!/usr/bin/env bash
# (Call D's `new` build read A in place up to a 4 KiB step; the committed rule, used in call E, stops at 1 KiB.)
# Stop 30, call D: the change (private grid for one product of at most two default blocks per thread, K <= 1024, row
# blocks up to 264, A packed when its steps lie a page apart) as `new` beside main's behaviour (`main`: the lab build
# with no switch) and MKL, CoreLab big, processes alternating twice; 16 threads on cores 0-15 unless said.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
lab() { # DIR THREADS CORES [ENV...]
  local dir=$1 t=$2 cores=$3; shift 3
  env "$@" DOTNET_ROOT=$rt timeout 90 taskset -c $cores $rt/dotnet $D/lab/$dir/MoeSharp.Benchmarks.dll x $t big
}
shape() { # THREADS CORES M N K [extra lab args...]
  local t=$1 cores=$2; export LAB_M=$3 LAB_N=$4 LAB_K=$5; shift 5
  OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t taskset -c $cores python3 $D/lab/mkl_big.py $t
  lab big $t $cores LAB_TAG=main
  lab bignew $t $cores LAB_TAG=new
  if [[ $# -gt 0 ]]; then lab big $t $cores "$@"; fi
}
for r in 1 2; do
  echo "== round $r"
  shape 16 0-15 1024 1024 1024
  shape 16 0-15 512 1024 1024
  shape 16 0-15 1024 1024 512
  shape 16 0-15 512 512 512 LAB_TAG=packA LAB_PACKA=1
  shape 2 2,3 256 512 512
done 2>&1 | tee $OUT/d.txt
date -u
