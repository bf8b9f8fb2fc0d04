# Holds the lock mutex of the state directory $1 (flock where it exists) until the script ends:
# checking a lock's holder and removing it is then one atomic step.
take_mutex() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>>"$1/lock.mutex"
    flock -w 10 9 || { echo "timed out waiting for the lock mutex" >&2; exit 1; }
  fi
}
