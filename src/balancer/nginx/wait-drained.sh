wait_ms=$1 addresses=$2
shift 2
began=$(uptime_cs)
deadline=$(( began + wait_ms / 10 ))
closed="" exited=""
while :; do
  counts=$(awk -v list="$addresses" '
    BEGIN { n = split(list, a, " "); for (i = 1; i <= n; i++) c[a[i]] = 0 }
    NR > 1 && $4 == "01" && ($3 in c) { c[$3]++; total++ }
    END { printf "%d", total; for (k in c) printf " %s=%d", k, c[k] }
  ' /proc/net/tcp)
  workers=0
  for p in "$@"; do
    if [ -d "/proc/$p" ]; then workers=$((workers + 1)); fi
  done
  now=$(uptime_cs)
  if [ -z "$closed" ] && [ "${counts%% *}" -eq 0 ]; then closed=" closed=$(( now - began ))"; fi
  if [ -z "$exited" ] && [ "$#" -gt 0 ] && [ "$workers" -eq 0 ]; then exited=" exited=$(( now - began ))"; fi
  if [ $(( ${counts%% *} + workers )) -eq 0 ] || [ "$now" -ge "$deadline" ]; then
    echo "workers=$workers$closed$exited ${counts#* }"
    exit 0
  fi
  sleep 0.02
done
