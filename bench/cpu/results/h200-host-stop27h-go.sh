#!/usr/bin/env bash
# Stop 27, call H (this build): the CPU tables other than the GEMM and the layer (dispatch + combine, all-to-all-v,
# the default moe run) at 2 threads (cores 0-1) and 16, and three more first `moe run`s on 2 pinned cores.
set -u
D=.device
bash $D/run.sh --version > /dev/null 2>&1 || true
rt=/tmp/dotnet-runtime
SKIP=gemm,layer,large-layer BUDGET_S=300 STEP_TIMEOUT=90 timeout 320 bash $D/cpu/device-run.sh $D > $OUT/device-run-console.txt 2>&1
grep -E '^\|' $OUT/tables-cpu.md | grep -v -- '---' | cut -c1-220
echo "== moe run, 2 pinned cores"
for i in 1 2 3; do MOESHARP_THREADS=2 DOTNET_ROOT=$rt timeout 60 taskset -c 0-1 $rt/dotnet $D/app/moe.dll run 2>&1 | grep -o '[0-9.]* ms for dispatch' | tr '\n' ' '; echo; done | tee $OUT/run.txt
cd $OUT && tar czf /tmp/out-h.tgz . && rm -rf $OUT/* && mv /tmp/out-h.tgz $OUT/ && ls
