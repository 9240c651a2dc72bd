#!/usr/bin/env bash
# Stop 27, call J (final build, 591c735): the T 2048 layer step at 16 and 2 threads against main's library, two
# interleaved rounds beside PyTorch's; the GEMM table at 16 threads beside MKL, one round.
set -u
D=.device
ROUNDS=2 SHAPES=2048x512 THREADS="16 2" STEPS=12 PEER=1 timeout 150 bash $D/cpu/device-ab-layer.sh $D > $OUT/ab.txt 2>&1
cat $OUT/ab-layer.md
timeout 120 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 16 --fma-lanes 16 \
  --timeout 100 --gemm-rounds 1 --skip dispatch,exchange,layer,run,large-layer --jsonl $OUT/gemm16.jsonl --log $OUT/gemm16-log.txt > $OUT/gemm16.md 2>&1
grep -E '^\|' $OUT/gemm16.md | grep -v -- '---' | cut -c1-220
cd $OUT && tar czf /tmp/out-j.tgz . && rm -rf $OUT/* && mv /tmp/out-j.tgz $OUT/
