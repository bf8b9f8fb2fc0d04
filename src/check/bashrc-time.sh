command -v bash >/dev/null 2>&1 && [ -f "$HOME/.bashrc" ] || exit 0
bash -c 'TIMEFORMAT=%R; { time . "$HOME/.bashrc" >/dev/null 2>&1 </dev/null; } 2>&1' | tail -n 1
