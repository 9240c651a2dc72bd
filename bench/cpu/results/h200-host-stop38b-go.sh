# .device/pipe/ held a Release build of bench/cpu/lab/PipeLab.cs.txt (lab README, "Stop 38") and its MoeSharp.dll
bash .device/run.sh --version
export DOTNET_ROOT=/tmp/dotnet-runtime PATH=/tmp/dotnet-runtime:$PATH
lab=.device/pipe/MoeSharp.Benchmarks.dll
lscpu | grep -E "Model name|MHz|L2|Thread"
echo "== cores 2 and 3 at once"
taskset -c 2 dotnet $lab c2pair 80 > /tmp/c2.txt & taskset -c 3 dotnet $lab c3pair 80 > /tmp/c3.txt; wait
cat /tmp/c2.txt /tmp/c3.txt
echo "== core 2 alone"; taskset -c 2 dotnet $lab c2 80
echo "== core 9 alone"; taskset -c 9 dotnet $lab c9 80
echo "== core 5 alone"; taskset -c 5 dotnet $lab c5 80
