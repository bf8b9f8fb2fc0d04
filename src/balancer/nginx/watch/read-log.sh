file=$1 start=$2 max_bytes=$3
if [ ! -e "$file" ]; then echo 0; exit 0; fi
size=$(wc -c < "$file") || exit 1
echo "$size"
# Bytes above 127 become "?": one byte each still, so the offset counted on the text nexus
# decodes stays the file's (a logged request may carry bytes that are not UTF-8).
if [ "$size" -ge "$start" ]; then tail -c +$((start + 1)) "$file" | head -c "$max_bytes"; else head -c "$max_bytes" "$file"; fi | tr '\200-\377' '?'
