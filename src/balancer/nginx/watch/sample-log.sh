file=$1 bytes=$2
if [ ! -e "$file" ]; then echo missing; exit 0; fi
if [ ! -r "$file" ]; then echo unreadable; exit 0; fi
printf "ok %s\n" "$(wc -c < "$file")"
tail -c "$bytes" "$file"
