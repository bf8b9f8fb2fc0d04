port=$1 ip=$2 name=$3
p=$(command -v pm2 2>/dev/null) && say pm2_path "$p"
# pm2's version from its package.json: `pm2 -v` can start a daemon, and check changes nothing.
p=$(command -v pm2 2>/dev/null) && d=$(dirname "$(readlink -f "$p")") && say pm2_version "$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$d/../package.json" 2>/dev/null | head -n 1)"
u=$(id -un)
for f in "/etc/systemd/system/pm2-$u.service" "/lib/systemd/system/pm2-$u.service"; do [ -f "$f" ] && say pm2_unit "$f"; done
command -v systemctl >/dev/null 2>&1 && say pm2_unit_enabled "$(systemctl is-enabled "pm2-$u" 2>/dev/null)"
# Sockets listening (state 0A) on the app port, hex as /proc/net/tcp writes it, at the app's
# address or all addresses (any address when the app's is not an IPv4 literal: ip is empty);
# then which process holds each: the app (PM2 sets its name in the env), PM2, or another.
inodes=$(awk -v port="$port" -v ip="$ip" '
  NR > 1 && $4 == "0A" { split($2, a, ":"); if (a[2] == port && (ip == "" || a[1] == ip || a[1] ~ /^0+$/)) print $10 }
' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
say port_listeners "$(printf '%s\n' "$inodes" | grep -c .)"
for i in $inodes; do
  owner=""
  for fd in /proc/[0-9]*/fd/*; do if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$i]" ]; then owner=$(echo "$fd" | cut -d/ -f3); break; fi; done
  if [ -z "$owner" ]; then say port_holder other; continue; fi
  app=$(tr '\0' '\n' < "/proc/$owner/environ" 2>/dev/null | sed -n 's/^name=//p' | head -n 1)
  if [ "$app" = "$name" ]; then say port_holder app
  elif tr '\0' ' ' < "/proc/$owner/cmdline" 2>/dev/null | grep -q 'PM2'; then say port_holder pm2
  else say port_holder "pid $owner $(tr '\0' ' ' < "/proc/$owner/cmdline" 2>/dev/null | cut -c1-60)"; fi
done
exit 0
