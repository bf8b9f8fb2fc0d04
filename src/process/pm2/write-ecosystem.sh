umask 077
if ! command -v node >/dev/null 2>&1; then echo "nexus: node is not installed on this server" >&2; exit 127; fi
exec node -e "${program:?}" "$1" "$2" "$3" "${4:-}"
