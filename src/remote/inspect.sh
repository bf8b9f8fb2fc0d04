base=$1
if [ ! -d "$base" ]; then echo @missing; exit 0; fi
cd "$base" || exit 1
printf '@current %s\n' "$(readlink current 2>/dev/null | tr '\n' ' ')"
for d in releases/*; do
  [ -d "$d" ] || continue
  id=${d#releases/}
  case "$id" in *.partial | -* | .* | *[!A-Za-z0-9._-]*) continue ;; esac
  # Staged-at: the stamp extraction writes; the directory's own mtime for releases older than it.
  if [ -e ".nexus/staged/$id" ]; then t=$(stat -c %Y ".nexus/staged/$id" 2>/dev/null || echo 0)
  else t=$(stat -c %Y "$d" 2>/dev/null || echo 0); fi
  if [ -e ".nexus/failed/$id" ]; then s=failed; else s=ok; fi
  printf '@release %s %s %s\n' "$id" "$s" "$t"
done
if [ -f .nexus/lock ]; then printf '@lock %s\n' "$(head -c 4096 .nexus/lock | tr '\n' ' ')"; fi
if [ -f .nexus/journal.json ]; then printf '@journal %s\n' "$(head -c 4096 .nexus/journal.json | tr '\n' ' ')"; fi
if [ -f .nexus/live-port ]; then printf '@live-port %s\n' "$(head -c 16 .nexus/live-port | tr '\n' ' ')"; fi
