set -eu
release=$1 current=$2
shift 2
cd "$release"
if [ ! -f package.json ]; then echo @skipped; exit 0; fi
if ! command -v node >/dev/null 2>&1; then echo "nexus: node is not installed on this server" >&2; exit 127; fi
exec node -e "${program:?}" "$current" "$@"
