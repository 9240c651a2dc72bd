#!/usr/bin/env bash
# Regenerates the public API lists (PublicAPI.Unshipped.txt) of the library packages from the code, with the
# PublicApiAnalyzers' own code fix (RS0016: add a missing public symbol). Run it after changing or merging public API,
# review the diff, and commit the files. PublicAPI.Shipped.txt is left alone: move lines there when a version ships.
# Symbols removed from the code are dropped because the unshipped list is rebuilt from scratch.
set -euo pipefail
cd "$(dirname "$0")/.."
projects=(src/MoeSharp/MoeSharp.csproj src/MoeSharp.Mpi/MoeSharp.Mpi.csproj src/MoeSharp.Cuda/MoeSharp.Cuda.csproj)
for project in "${projects[@]}"; do
  printf '#nullable enable\n' > "$(dirname "$project")/PublicAPI.Unshipped.txt"
done
for project in "${projects[@]}"; do
  echo "== $project"
  dotnet format analyzers "$project" --diagnostics RS0016 --severity warn -v q
done
# The code fix appends in the order it visits; sort the body (ordinal) so merges and reruns give stable diffs.
for project in "${projects[@]}"; do
  file="$(dirname "$project")/PublicAPI.Unshipped.txt"
  { head -n 1 "$file"; tail -n +2 "$file" | LC_ALL=C sort -u; } > "$file.tmp" && mv "$file.tmp" "$file"
  echo "$file: $(($(wc -l < "$file") - 1)) public symbols"
done
# Fails (RS0016/RS0017 are errors under TreatWarningsAsErrors) if a list is still incomplete.
for project in "${projects[@]}"; do dotnet build "$project" -c Release -v q -nologo; done
