# .device/app: the 8 x 48 build (lab/stop38_k848.patch on f073064), .device/main-lib: 3c549e9's MoeSharp.dll (the same library code as f073064)
bash .device/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH
rm -rf /tmp/main-app && cp -r .device/app /tmp/main-app && cp .device/main-lib/MoeSharp.dll /tmp/main-app/
mkdir -p /tmp/ab2 /tmp/ab16
lscpu | grep -E "Model name|Thread"
for r in 0 1 2; do
  for b in main k848; do
    app=.device/app/moe.dll; [ $b = main ] && app=/tmp/main-app/moe.dll
    taskset -c 2,3 dotnet $app bench-cpu --what gemm --threads 2 --fma-lanes 16 --repeats 11 --json > /tmp/ab2/$b-r$r.jsonl 2>&1
  done
done
echo "== 2 threads (cores 2-3)"; python3 .device/cpu/ab_rows.py /tmp/ab2
for r in 0 1 2 3; do
  for b in main k848; do
    app=.device/app/moe.dll; [ $b = main ] && app=/tmp/main-app/moe.dll
    dotnet $app bench-cpu --what gemm --threads 16 --fma-lanes 16 --repeats 11 --json > /tmp/ab16/$b-r$r.jsonl 2>&1
  done
done
echo "== 16 threads"; python3 .device/cpu/ab_rows.py /tmp/ab16
cat /tmp/ab2/*.jsonl > $OUT/ab2.jsonl; cat /tmp/ab16/*.jsonl > $OUT/ab16.jsonl
