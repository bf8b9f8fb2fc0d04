cd "$1" || exit 1
exec node -e "${program:?}" "$2" "$3"
