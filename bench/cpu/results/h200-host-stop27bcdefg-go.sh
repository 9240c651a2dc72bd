#!/usr/bin/env bash
# Stop 27, calls B-G: the scripts as run (each was .device/go.sh of its call; call A's and H's are in their own -go.sh).
# TraceLab: bench/cpu/lab/TraceLab.cs.txt against builds patched by bench/cpu/lab/trace_patch.py (tracelab/NAME/ holds
# the lab and that build's MoeSharp.dll: main = 0e2c771, this = the task grid with shared packing, priv = b415395, the
# grid with private packing, and in calls E-F also LAB_GRID / LAB_KC overrides); corelab = CoreLab.cs.txt on the build.

# --- call B: where a product's time goes, grid with shared packing (this) against main
lab() { DOTNET_ROOT=$rt timeout 60 taskset -c $1 $rt/dotnet $D/tracelab/$2/MoeSharp.Benchmarks.dll $2@$1 $3 $4 $5 $6; }
for r in 1 2; do
  for v in this main; do
    lab 0-15 $v 16 256 512 512; lab 0-7 $v 8 256 512 512; lab 0-15 $v 16 1024 1024 1024
    lab 0,1 $v 2 256 512 512; lab 2,3 $v 2 256 512 512
  done
  lab 0,1 this 2 1024 1024 1024; lab 2,3 this 2 1024 1024 1024; lab 0 this 1 256 512 512; lab 2 this 1 256 512 512
done 2>&1 | tee $OUT/trace.txt

# --- call C: main, grid with shared packing (this), grid with private packing (priv), three rounds
for r in 1 2 3; do
  for v in priv this main; do
    lab 0-15 $v 16 256 512 512; lab 0-11 $v 12 256 512 512; lab 0-7 $v 8 256 512 512; lab 0-3 $v 4 256 512 512
  done
done 2>&1 | tee $OUT/trace.txt

# --- call D: this build (priv + bench-cpu timing back to back) in compare.py beside MKL; main's CLI and library
# (app-main) and this CLI with main's library (app-mainlib) in bench-cpu alone
bc() { MOESHARP_THREADS=$2 DOTNET_ROOT=$rt timeout 150 taskset -c $3 $rt/dotnet $1/moe.dll bench-cpu --what gemm --json --threads $2 --fma-lanes 16 > $OUT/bc-$4.jsonl 2>&1; }
lab() { DOTNET_ROOT=$rt timeout 60 taskset -c $1 $rt/dotnet $D/tracelab/priv/MoeSharp.Benchmarks.dll priv@$1 $2 $3 $4 $5; }
lab 0-15 16 256 512 512; lab 0-15 16 1024 1024 1024; lab 0,1 2 256 512 512
bc /tmp/app-main 16 0-15 main16; bc /tmp/app-mainlib 16 0-15 mainlib16
python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 --timeout 120 \
  --gemm-rounds 1 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm16.jsonl --log $OUT/gemm16-log.txt
bc /tmp/app-main 2 0,1 main2
python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --fma-lanes 16 --timeout 120 \
  --gemm-rounds 1 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm2.jsonl --log $OUT/gemm2-log.txt
lab 0-15 16 256 512 512; lab 0,1 2 256 512 512

# --- call E: other grids and depths with private packing (lab-only overrides), then the layer against main's library
lab() { DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/tracelab/priv/MoeSharp.Benchmarks.dll "$1" 16 256 512 512; }
for r in 1 2; do
  lab "priv 2x8(132,64)"; LAB_GRID=72,128 lab "priv 4x4(72,128)"; LAB_GRID=72,64 lab "priv 4x8(72,64)"
  LAB_GRID=36,128 lab "priv 8x4(36,128)"; LAB_KC=512 lab "priv 2x8 kc512"; LAB_KC=192 lab "priv 2x8 kc192"
  LAB_KC=256 lab "priv 2x8 kc256"
done 2>&1 | tee $OUT/trace.txt
ROUNDS=2 SHAPES=2048x512 THREADS="2 16" STEPS=12 PEER=1 bash $D/cpu/device-ab-layer.sh $D   # variants/mainlib = main's library
ROUNDS=2 SHAPES=8192x1024 THREADS="16" STEPS=8 PEER=1 bash $D/cpu/device-ab-layer.sh $D

# --- call F: the T 2048 layer's router products at 16 threads, priv against main, three rounds
lab() { DOTNET_ROOT=$rt timeout 60 taskset -c 0-15 $rt/dotnet $D/tracelab/$1/MoeSharp.Benchmarks.dll "$1" 16 $2 $3 $4; }
for r in 1 2 3; do for v in priv main; do lab $v 2048 16 512; lab $v 2048 512 16; done; done

# --- call G: this build's GEMM tables, the lone product's scaling beside MKL, the 2-thread T 2048 layer
for n in 2 16; do
  python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads $n --fma-lanes 16 --timeout 120 \
    --gemm-rounds $(( n == 2 ? 3 : 2 )) --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm$n.jsonl --log $OUT/gemm$n-log.txt
done
DOTNET_ROOT=$rt $rt/dotnet $D/corelab/MoeSharp.Benchmarks.dll all 16 lone; OMP_NUM_THREADS=16 python3 $D/cpu/mkl_lone.py 16
ROUNDS=3 SHAPES=2048x512 THREADS=2 STEPS=12 PEER=1 bash $D/cpu/device-ab-layer.sh $D
