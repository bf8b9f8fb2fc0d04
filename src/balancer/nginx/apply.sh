file=$1 expected=$2 test_command=$3 reload_command=$4 pid_file=$5 wait=$6 barrier=${7:-retired}
if [ ! -r "$file" ] || [ ! -w "$file" ]; then
  echo "$(id -un 2>/dev/null || echo this user) cannot read and write $(ls -ld "$file" 2>&1)" >&2
  exit 81 # APPLY_EXIT.cannotWrite
fi
# Without flock (not Linux util-linux), the compare-and-swap still catches most overlaps.
if command -v flock >/dev/null 2>&1; then
  exec 9<"$file"
  flock -w "$wait" 9 || { echo "another run has held the lock on the upstream file for ${wait}s" >&2; exit 83; } # APPLY_EXIT.lockTimeout
fi
command -v sha256sum >/dev/null 2>&1 || exit 84 # APPLY_EXIT.noSha256sum
current=$(sha256sum < "$file" | cut -c1-64)
if [ "$current" != "$expected" ]; then exit 82; fi # APPLY_EXIT.changed
backup=$(umask 077 && mktemp "${TMPDIR:-/tmp}/nexus-upstream.XXXXXX") || {
  echo "cannot create a backup file in ${TMPDIR:-/tmp}" >&2
  exit 81 # APPLY_EXIT.cannotWrite
}
if ! cat "$file" > "$backup"; then rm -f "$backup"; exit 81; fi # APPLY_EXIT.cannotWrite
restore() {
  if cat "$backup" > "$file"; then rm -f "$backup"; else echo "could not restore the upstream file: its previous content is in $backup" >&2; fi
}
if ! cat > "$file"; then restore; exit 81; fi # APPLY_EXIT.cannotWrite
# 9<&-: a daemon started by these commands must not inherit (and keep) the lock.
if ! test_output=$(sh -c "$test_command" 2>&1 9<&-); then
  restore
  printf '%s\n' "$test_output" >&2
  exit 80 # APPLY_EXIT.testFailed
fi
workers() {
  # The master's children from /proc (Linux 3.5+), else pgrep; only worker processes count.
  for p in $(cat "/proc/$1/task/$1/children" 2>/dev/null || pgrep -P "$1"); do
    tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q 'worker process' && printf '%s ' "$p"
  done
}
master=$(cat "$pid_file" 2>/dev/null) || master=""
old=""
if [ -n "$master" ]; then old=$(workers "$master"); fi
if ! reload_output=$(sh -c "$reload_command" 2>&1 9<&-); then
  restore
  printf '%s\n' "$reload_output" >&2
  exit 1
fi
if [ -n "$reload_output" ]; then printf '%s\n' "$reload_output"; fi
rm -f "$backup"
if [ -z "$master" ]; then exit 70; fi # APPLY_EXIT.reloadUnconfirmed
# Nginx's master starts the new workers, sleeps 100 ms, then retires the old ones: a fine poll
# ends the wait soon after. With no worker seen before the reload (/proc hidden by hidepid, no
# pgrep), no new one can be told apart either: only the (vacuous) retired barrier applies.
if [ -z "$old" ]; then barrier=retired; fi
deadline=$(( $(uptime_cs) + 500 ))
while [ "$(uptime_cs)" -lt "$deadline" ]; do
  pending=0
  if [ "$barrier" = started ]; then
    pending=1
    for p in $(workers "$master"); do
      case " $old " in *" $p "*) ;; *) pending=0 ;; esac
    done
  else
    for p in $old; do
      if [ -r "/proc/$p/cmdline" ] && ! tr '\0' ' ' < "/proc/$p/cmdline" | grep -q 'shutting down'; then pending=1; fi
    done
  fi
  if [ "$pending" = 0 ]; then echo "@old $old"; exit 0; fi
  sleep 0.01
done
exit 71 # APPLY_EXIT.reloadTimeout
