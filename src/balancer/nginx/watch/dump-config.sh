exec sh -c "$1 -T" 2>/dev/null
