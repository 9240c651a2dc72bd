# .device/app: the 8 x 48 build with the in-place grid and whole-panel owned blocks (lab/stop38_k848m.patch on 3c549e9), .device/main-lib: 3c549e9's MoeSharp.dll
#!/usr/bin/env bash
# Stop 38, call I: main (3c549e9, .device/main-lib) and the 8 x 48 kernels with the in-place grid (.device/app)
# alternating in `moe bench-cpu --what gemm --json` (2 threads on cores 2-3, three rounds; 16 threads, three), then
# compare.py's layer steps on the candidate (one round at 2 threads, one at 16).
D=.device
bash $D/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH
rm -rf /tmp/main-app && cp -r $D/app /tmp/main-app && cp $D/main-lib/MoeSharp.dll /tmp/main-app/
mkdir -p /tmp/ab2 /tmp/ab16 /tmp/raw
for r in 0 1 2; do for b in main k848m; do
  app=$D/app/moe.dll; [ $b = main ] && app=/tmp/main-app/moe.dll
  taskset -c 2,3 dotnet $app bench-cpu --what gemm --threads 2 --fma-lanes 16 --repeats 11 --json > /tmp/ab2/$b-r$r.jsonl 2>&1
done; done
echo "== 2 threads (cores 2-3)"; python3 $D/cpu/ab_rows.py /tmp/ab2
for r in 0 1 2; do for b in main k848m; do
  app=$D/app/moe.dll; [ $b = main ] && app=/tmp/main-app/moe.dll
  dotnet $app bench-cpu --what gemm --threads 16 --fma-lanes 16 --repeats 11 --json > /tmp/ab16/$b-r$r.jsonl 2>&1
done; done
echo "== 16 threads"; python3 $D/cpu/ab_rows.py /tmp/ab16
cat /tmp/ab2/*.jsonl > $OUT/ab2.jsonl; cat /tmp/ab16/*.jsonl > $OUT/ab16.jsonl
timeout 150 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --pin --threads 2 --cores 2,3 --fma-lanes 16 \
  --timeout 120 --layer-rounds 1 --skip gemm,dispatch,exchange,run --jsonl /tmp/raw/j2.jsonl --log /tmp/raw/j2-log.txt > $OUT/j2.md 2>&1
echo "layers 2 rc $?"
timeout 100 python3 $D/cpu/compare.py --moe "bash $D/run.sh" --python python3 --threads 16 --fma-lanes 16 \
  --timeout 80 --layer-rounds 1 --skip gemm,dispatch,exchange,run --jsonl /tmp/raw/j16.jsonl --log /tmp/raw/j16-log.txt > $OUT/j16.md 2>&1
echo "layers 16 rc $?"
grep -E '^\|' $OUT/j2.md $OUT/j16.md | grep -v -- '---'
