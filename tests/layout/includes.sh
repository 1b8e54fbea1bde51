#!/usr/bin/env bash
# Includes point down only (DESIGN "Layout"): each folder may include its own headers and
# those of the folders below it, never above. The call core (call/, ai/) knows no platform.
#   tests/layout/includes.sh [ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$root"
declare -A allowed=(
  [db]="db"
  [server]="server db"
  [ai]="ai server db"
  [call]="call ai server db"
  [twiml]="twiml call server db"
  [asterisk]="asterisk call ai server db"
  [jambonz]="jambonz call ai server db"
  [handlers]="handlers twiml asterisk jambonz call ai server db"
)
bad=0
for dir in "${!allowed[@]}"; do
  [ -d "$dir" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
    top=${inc%%/*}
    [ "$top" != "$inc" ] || { echo "$file: #include \"$inc\" has no folder: write it from the repository root"; bad=1; continue; }
    case " ${allowed[$dir]} " in *" $top "*) ;; *) echo "$file: #include \"$inc\" points up or sideways ($dir/ may include: ${allowed[$dir]})"; bad=1 ;; esac
  done < <(grep -HE '^[[:space:]]*#[[:space:]]*include[[:space:]]+"' "$dir"/*.c "$dir"/*.h 2>/dev/null || true)
done
[ "$bad" -eq 0 ] && echo "layout: every include points down"
exit "$bad"
