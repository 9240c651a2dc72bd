#!/usr/bin/env bash
# Formats the whole repository's C# as docs/conventions.md describes: the code-style fixes .editorconfig asks for
# (dotnet format, style rules only: whitespace is CSharpier's), then CSharpier's layout at 120 columns. Naming
# violations are reported by eng/check-format.sh, never renamed here. Long comments are wrapped by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet tool restore
dotnet format style MoeSharp.slnx --severity warn --exclude-diagnostics IDE1006
dotnet csharpier format .
