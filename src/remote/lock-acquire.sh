state=$1 lock=$2 holder=$3
mkdir -p "$state" || exit 1
take_mutex "$state"
new="$lock.$$"
if ! printf '%s\n' "$holder" > "$new"; then
  rm -f "$new"
  echo "cannot write the deploy lock in $state (disk full?)" >&2
  exit 1
fi
if [ -f "$lock" ] && [ ! -s "$lock" ]; then rm -f "$lock"; fi
if ln "$new" "$lock" 2>/dev/null; then
  rm -f "$new"
  echo @acquired
elif [ ! -e "$lock" ]; then
  rm -f "$new"
  echo "cannot create the deploy lock $lock (ln failed: a file system without hard links?)" >&2
  exit 1
else
  rm -f "$new"
  printf '@held %s\n' "$(head -c 4096 "$lock" | tr '\n' ' ')"
fi
