shared=$1
shift
for entry in "$@"; do
  case "$entry" in
    f:*) rel=${entry#f:}; [ -f "$shared/$rel" ] || printf '@missing %s\n' "$rel" ;;
  esac
done
