#!/usr/bin/env bash
# Reports C# lines over 120 characters (docs/conventions.md) and exits 1 if there is one it does not accept.
# CSharpier wraps code at 120 columns but cannot break a comment or a string literal. A line that is long only
# because of a string literal is accepted (split the literal by hand where it reads better). A long comment must be
# wrapped by hand.
#   bash eng/check-line-length.sh           check (CI, through eng/check-format.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C.UTF-8 # lengths in characters, not bytes
limit=120
long=$(mktemp)
trap 'rm -f "$long"' EXIT

git ls-files -z '*.cs' | xargs -0 grep -nE "^.{$((limit + 1)),}" /dev/null | while IFS= read -r hit; do
  file=${hit%%:*}
  rest=${hit#*:}
  number=${rest%%:*}
  text=${rest#*:}
  # Outside comment lines: char literals emptied first (a quote in one would pair wrongly), then string literals; a
  # trailing comment keeps its length.
  code=$text
  if [[ ! $text =~ ^[[:space:]]*// ]]; then
    code=$(sed -E "s/'(\\\\.|[^'\\\\])'/''/g; s/\"([^\"\\\\]|\\\\.)*\"/\"\"/g" <<<"$text")
  fi
  if ((${#code} > limit)); then
    trimmed=${text#"${text%%[![:space:]]*}"}
    printf '%s\t%s\t%s\t%s\n' "$file" "$number" "${#text}" "$trimmed"
  fi
done >"$long"

while IFS=$'\t' read -r file number length trimmed; do
  echo "$file:$number: $length characters (at most $limit; wrap it, CSharpier cannot)"
done <"$long"
echo "lines over $limit characters: $(wc -l <"$long")"
[ ! -s "$long" ]
