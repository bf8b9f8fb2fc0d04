# $1 the live-port file: its content, nothing when there is none
[ ! -f "$1" ] || cat "$1"
