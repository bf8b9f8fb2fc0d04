pm2_dir=$(pm2_package) || exit
exec node -e "${program:?}" "$pm2_dir" "$1" "$2" "${3:-}" "${4:-}"
