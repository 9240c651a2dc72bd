# Shared by the device scripts of bench/cpu (sourced, not run).

# Prints the names of the builds under D/variants/NAME/MoeSharp.dll, one line each, after laying each out as
# /tmp/app-NAME: a copy of the packed build D/app with that MoeSharp.dll in place of its own.
variant_names() {
  local d=$1 v
  for v in "$d"/variants/*/; do
    [[ -d $v ]] || continue
    v=$(basename "$v")
    rm -rf "/tmp/app-$v"
    cp -r "$d/app" "/tmp/app-$v"
    cp "$d/variants/$v/MoeSharp.dll" "/tmp/app-$v/MoeSharp.dll"
    echo "$v"
  done
}

# Prints the float32 lanes per FMA unit the peak assumes: Intel's AVX-512 cores have two 512-bit FMA units (16); AMD
# Zen 4 splits AVX-512 over 256-bit units, and AVX2-only cores have 256-bit units (8).
fma_lanes() {
  if grep -q GenuineIntel /proc/cpuinfo && grep -qw avx512f /proc/cpuinfo; then echo 16; else echo 8; fi
}

# Unpacks D's .NET runtime (D/run.sh does it on its first run) so that no timed run pays for it, and prints the folder
# it lies in, for scripts that start the runtime's dotnet directly.
unpacked_runtime() {
  bash "$1/run.sh" --version > /dev/null 2>&1 || true
  echo "${DOTNET_RUNTIME:-/tmp/dotnet-runtime}"
}
