# Prints the directory of the PM2 package behind the `pm2` on PATH (the PM2 the operator uses).
pm2_package() {
  pm2_bin=$(command -v pm2) || { echo "pm2 is not installed on this server, or not on the PATH of a non-interactive SSH command (npm install -g pm2; see docs/servers.md)" >&2; exit 127; } # REMOTE_EXIT.notInstalled
  dirname "$(dirname "$(readlink -f "$pm2_bin")")"
}
