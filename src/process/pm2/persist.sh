umask 077
pm2 save --force >/dev/null 2>&1 || exit 0
chmod 600 "${PM2_HOME:-$HOME/.pm2}/dump.pm2" 2>/dev/null || true
