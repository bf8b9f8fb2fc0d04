f=$1 prev=$2 off=$3 max=$4
identify() { stat -L -c '%d:%i %s' "$1" 2>/dev/null; }
old_rest() {
  [ -n "$prev" ] && [ -e "$f.1" ] || return 0
  info=$(identify "$f.1")
  osize=${info#* }
  [ "${info% *}" = "$prev" ] && [ "${osize:-0}" -gt "$off" ] || return 0
  n=$((osize - off))
  [ "$n" -le "$max" ] || n=$max
  echo "@old $n"
  tail -c +$((off + 1)) "$f.1" | head -c "$n" | tr '\200-\377' '?'
}
if [ ! -e "$f" ]; then
  echo missing
  old_rest
  exit 0
fi
exec 3<"$f" || exit 1
info=$(identify /dev/fd/3)
id=${info% *} size=${info#* }
if [ -z "$info" ]; then id="" size=$(wc -c <"$f") || exit 1; fi
start=$off
if { [ -n "$prev" ] && [ -n "$id" ] && [ "$id" != "$prev" ]; } || [ "$size" -lt "$off" ]; then
  start=0
fi
echo "${id:--} $size $start"
if [ "$start" = 0 ] && [ "$off" != 0 ]; then old_rest; fi
tail -c +$((start + 1)) <&3 | head -c "$max" | tr '\200-\377' '?'
