#!/usr/bin/env bash
# Stop 29, call B: which state left by the 1024^3 products slows the lone 256x512x512 product after them. CoreLab's
# sequence forms (bench/cpu/lab/CoreLab.cs.txt): seq (the lone product alone), seqfull (1024^3 first), seqgc (a full
# blocking GC in between), seqpre (the lone product's arrays allocated before the 1024^3 ones), seqrev (lone, 1024^3,
# lone), seqmid (512^3 first), seqone (1024^3 on one thread first); "trim" is the same lab on a build whose GemmScratch
# gives back a kept buffer more than four times larger than a request (and 256 KiB).
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
date -u
lab() { DOTNET_ROOT=$rt timeout 60 taskset -c $1 $rt/dotnet $D/lone/$2/MoeSharp.Benchmarks.dll x $3 $4; }
for r in 1 2; do
  for f in seq seqfull seqgc seqpre seqrev seqmid seqone; do echo "== diag $f r$r"; lab 0-15 diag 16 $f; done
  echo "== trim seqfull r$r"; lab 0-15 trim 16 seqfull
  echo "== trim seqrev r$r"; lab 0-15 trim 16 seqrev
  for f in seq seqfull; do echo "== diag 2thr $f r$r"; lab 2-3 diag 2 $f; echo "== trim 2thr $f r$r"; lab 2-3 trim 2 $f; done
done 2>&1 | tee $OUT/d.txt
date -u
