umask 077
mkdir -p "$(dirname "$1")"
cat > "$1.tmp" && mv -f "$1.tmp" "$1"
