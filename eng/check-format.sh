#!/usr/bin/env bash
# Checks that the C# is formatted as eng/format.sh leaves it (CI runs this): CSharpier's layout, no new line over 120
# characters (eng/check-line-length.sh), and no code-style or naming warning of .editorconfig (dotnet format style,
# which never touches whitespace, so it and CSharpier cannot disagree). Exit 0 only if all three pass.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet tool restore >/dev/null
status=0
dotnet csharpier check . || { echo "not formatted: run bash eng/format.sh"; status=1; }
bash eng/check-line-length.sh || status=1
dotnet format style MoeSharp.slnx --verify-no-changes --severity warn || status=1
exit "$status"
