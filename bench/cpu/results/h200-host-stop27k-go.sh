#!/usr/bin/env bash
# Stop 27, call K (final library, 28c81af): the T 8192 D 1024 layer step at 2 threads (cores 0-1), two interleaved
# rounds beside PyTorch's (median of steps 2-6; PyTorch 5 steps after one warm-up).
set -u
D=.device
ROUNDS=2 SHAPES=8192x1024 THREADS=2 STEPS=6 PEER=1 timeout 200 bash $D/cpu/device-ab-layer.sh $D > $OUT/ab.txt 2>&1
cat $OUT/ab-layer.md
