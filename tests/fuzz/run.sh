#!/usr/bin/env bash
# Fuzzes one target of tests/MoeSharp.Fuzz (safetensors, golden, cli, index or hfconfig) with AFL++ through SharpFuzz for a bounded
# time: installs afl++ (apt-get) and the sharpfuzz tool when missing, publishes the harness, instruments MoeSharp.dll,
# MoeSharp.Verification.dll (the golden target's reader) and moe.dll, and runs afl-fuzz from the seed corpus in
# tests/fuzz/corpus/TARGET. Crashing inputs are copied to
# tests/fuzz/regressions/TARGET (the unit tests replay them) and the script exits 3 (1: the fuzzer itself failed). With MOESHARP_FUZZ_KEEP=1 the
# inputs AFL++ found new coverage with are added to the corpus, so it grows in the repository.
# Usage: tests/fuzz/run.sh TARGET [SECONDS]
set -euo pipefail
target=${1:?usage: run.sh safetensors|golden|cli|index|hfconfig [SECONDS]}
seconds=${2:-25}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! command -v afl-fuzz >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++ >/dev/null
fi
tools=${MOESHARP_FUZZ_TOOLS:-$HOME/.cache/moesharp-fuzz-tools}
[ -x "$tools/sharpfuzz" ] || dotnet tool install --tool-path "$tools" SharpFuzz.CommandLine --version 2.3.0 >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dotnet publish "$root/tests/MoeSharp.Fuzz" -c Release -o "$work/bin" -p:UseAppHost=false >/dev/null
for dll in MoeSharp.dll MoeSharp.Verification.dll moe.dll; do "$tools/sharpfuzz" "$work/bin/$dll" >/dev/null; done
# No terminal UI, no CPU pinning or frequency checks (shared CI cores), crashes seen by exit status, not core dumps.
AFL_NO_UI=1 AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 \
  afl-fuzz -V "$seconds" -t 10000 -m none -i "$root/tests/fuzz/corpus/$target" -o "$work/out" \
  -- dotnet "$work/bin/MoeSharp.Fuzz.dll" "$target" > "$work/afl.log" 2>&1 || { tail -20 "$work/afl.log"; exit 1; }
grep -E "execs_done|paths_total|corpus_count|saved_crashes|unique_crashes" "$work"/out/default/fuzzer_stats | tr -s ' ' | sed "s/^/fuzz $target: /"
found=0
for crash in "$work"/out/default/crashes/id:*; do
  [ -f "$crash" ] || continue
  mkdir -p "$root/tests/fuzz/regressions/$target"
  cp "$crash" "$root/tests/fuzz/regressions/$target/$(sha1sum "$crash" | cut -c1-16)"
  found=$((found + 1))
done
if [ "${MOESHARP_FUZZ_KEEP:-0}" = 1 ]; then
  for input in "$work"/out/default/queue/id:*; do
    [ -f "$input" ] && cp "$input" "$root/tests/fuzz/corpus/$target/$(sha1sum "$input" | cut -c1-16)"
  done
fi
if [ "$found" -gt 0 ]; then
  echo "fuzz $target: $found crashing input(s) saved in tests/fuzz/regressions/$target" >&2
  exit 3
fi
