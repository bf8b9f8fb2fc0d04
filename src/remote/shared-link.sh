set -eu
shared=$1 release=$2
shift 2
missing=""
for entry in "$@"; do
  case "$entry" in
    f:*) rel=${entry#f:}; [ -f "$shared/$rel" ] || missing="$missing $rel" ;;
    d:*) rel=${entry#d:}; mkdir -p "$shared/$rel" ;;
  esac
done
if [ -n "$missing" ]; then
  echo "shared file(s) missing in $shared:$missing" >&2
  exit 68 # REMOTE_EXIT.sharedMissing
fi
for entry in "$@"; do
  rel=${entry#?:}
  target="$release/$rel"
  mkdir -p "$(dirname "$target")"
  if [ -e "$target" ] || [ -L "$target" ]; then
    rm -rf "$target"
    printf '@replaced %s\n' "$rel"
  fi
  ln -s "$shared/$rel" "$target"
done
