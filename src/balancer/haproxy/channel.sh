sock=$1
if [ ! -S "$sock" ] || [ ! -w "$sock" ]; then echo "no writable HAProxy admin socket at $sock" >&2; exit 90; fi # NO_SOCKET
if command -v socat >/dev/null 2>&1; then exec socat stdio "UNIX-CONNECT:$sock"; fi
exec node -e "${program:?}" "$sock"
