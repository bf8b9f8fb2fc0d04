n=$1 follow=$2 file=$3
if [ "$follow" != 1 ]; then
  [ -e "$file" ] || exit 0
  exec tail -n "$n" -- "$file"
fi
tail -n "$n" -F -- "$file" 2>/dev/null &
pid=$!
cat >/dev/null 2>&1
kill "$pid" 2>/dev/null
exit 0
