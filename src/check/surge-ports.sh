# $1 the deploy path. Prints "live PORT" when the surge strategy recorded one, then "listen PORT"
# for every TCP port something listens on (IPv4 and IPv6, from /proc/net), in decimal.
if [ -f "$1/.nexus/live-port" ]; then printf 'live %s\n' "$(head -c 16 "$1/.nexus/live-port" | tr -d '\n')"; fi
for f in /proc/net/tcp /proc/net/tcp6; do
  [ -r "$f" ] || continue
  awk 'NR > 1 && $4 == "0A" { n = split($2, a, ":"); print "listen " a[n] }' "$f"
done | while read -r word hex; do printf '%s %d\n' "$word" "0x$hex"; done
