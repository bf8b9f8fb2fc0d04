rule=$1 target=$2
t=$(mktemp) || exit
printf '%s\n' "$rule" > "$t" && sudo -n visudo -c -f "$t" >/dev/null && sudo -n install -m 0440 -o root -g root "$t" "$target"
rc=$?
rm -f "$t"
exit $rc
