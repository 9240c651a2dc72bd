#!/usr/bin/env bash
# Stop 42, call A: main (1db2dde: the 1,024-step chunk, B read in place, narrow panels grouped) beside main without
# each (packb = 9d7e00f, kc384 = 2a53923, pack = 652c775), interleaved in rounds: `moe bench-cpu --what gemm --json`
# at 2 threads on cores 2-3 (2 rounds) and 16 threads (5 rounds), 7 timed calls per product.
set -u
D=.device
{ date -u; lscpu | grep -E '^(Model name|CPU\(s\)|Thread|Core|Socket|L1d|L2|L3)'; grep -m1 'cpu MHz' /proc/cpuinfo; nproc; } > $OUT/machine.txt
cat $OUT/machine.txt
SECONDS=0
ROUNDS2=2 ROUNDS_ALL=5 REPEATS=7 timeout 540 bash $D/cpu/device-ab-gemm.sh $D
echo "ab rc $? in $SECONDS s"
