release=$1
# /proc shows a cwd with symlinks resolved: so is the path compared with it.
dir=$(cd "${release%/*}" 2>/dev/null && pwd -P) && release="$dir/${release##*/}"
# One find for every process (a readlink each would fork hundreds of times); the path's glob
# characters escaped, as -lname reads a pattern.
pattern=$(printf '%s' "$release" | sed 's/[][*?\]/\\&/g')
strays() {
  find /proc/[0-9]*/cwd -maxdepth 0 \( -lname "$pattern" -o -lname "$pattern/*" \
    -o -lname "$pattern.partial" -o -lname "$pattern.partial/*" \) 2>/dev/null | cut -d/ -f3
}
pids=$(strays)
[ -n "$pids" ] || exit 0
# shellcheck disable=SC2086 # one word per pid, digits only
kill $pids 2>/dev/null
i=0
while [ $i -lt 50 ] && [ -n "$(strays)" ]; do sleep 0.1; i=$((i + 1)); done
pids=$(strays)
# shellcheck disable=SC2086 # one word per pid, digits only
[ -z "$pids" ] || kill -9 $pids 2>/dev/null
echo "@stopped"
