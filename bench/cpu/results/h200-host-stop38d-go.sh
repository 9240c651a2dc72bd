# .device/pipe/ held a Release build of bench/cpu/lab/PipeLab.cs.txt (lab README, "Stop 38") and its MoeSharp.dll
bash .device/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH
lab=.device/pipe/MoeSharp.Benchmarks.dll
echo "== cores 2 and 3 at once"
taskset -c 2 dotnet $lab c2pair 200 > /tmp/c2.txt & taskset -c 3 dotnet $lab c3pair 200 > /tmp/c3.txt; wait
cat /tmp/c2.txt /tmp/c3.txt
for c in 9 5; do echo "== core $c alone"; taskset -c $c dotnet $lab c$c 200; done
