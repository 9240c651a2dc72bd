# The merged build's layer step beside the peer, moe train at qwen3, the golden files and the GPU-only tests, one call.
set -u
cd "$(dirname "$0")/.."
D=.device-gpu
(cd $D && tar xJf gpu-tests.tar.xz)
export OUT
LAYER_TRAIN=1 LAYER_CHECK=1 GOLDEN=golden timeout 280 bash bench/gpu/layer-bench.sh $D > $OUT/layer-bench.txt 2>&1
grep -E "^==|products|phases|step time|verify-golden|gpu tests|Passed|Failed|PASS|FAIL" $OUT/layer-bench.txt | cut -c1-600 | head -40
