# say KEY VALUE: one `key=value` line (a newline in the value becomes a space), read by parseFacts.
say() { printf '%s=%s\n' "$1" "$(printf '%s' "$2" | tr '\n' ' ')"; }
