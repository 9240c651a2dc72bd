#!/usr/bin/env bash
# Stop 43, call B (the same warm machine right after call A): main's GEMM beside MKL at 16 threads (three rounds) and
# at 2 threads on cores 2-3 (five rounds). In call B .device held the stop-42 lab build, which runs as main with no
# LAB_ switch.
cat /proc/cpuinfo | grep -m1 'model name'
THREADS=16 GEMM_ROUNDS=3 BUDGET_S=170 OUT=$OUT/g16 bash .device/cpu/device-run-gemm.sh .device > $OUT/g16.log 2>&1; tail -30 $OUT/g16.log
THREADS=2 CORES=2,3 GEMM_ROUNDS=5 BUDGET_S=330 OUT=$OUT/g2 bash .device/cpu/device-run-gemm.sh .device > $OUT/g2.log 2>&1; tail -30 $OUT/g2.log
