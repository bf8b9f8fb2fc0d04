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
real_release=$(cd -P "$release" && pwd -P)
real_shared=$(cd -P "$shared" && pwd -P)
# Prints why linking $1 is unsafe, or nothing: a parent inside the release that is a symlink, or
# an existing parent that resolves outside the release or into shared/.
unsafe() {
  path=$release rest=$1
  while [ "${rest#*/}" != "$rest" ]; do
    path="$path/${rest%%/*}" rest=${rest#*/}
    if [ -L "$path" ]; then
      printf '%s is a symlink in the release' "${path#"$release"/}"
      return
    fi
    [ -e "$path" ] || return 0
  done
  parent=$(cd -P "$(dirname "$release/$1")" && pwd -P) || { printf 'its parent cannot be read'; return; }
  case "$parent/" in
    "$real_shared"/*) printf 'its parent resolves into %s' "$shared" ;;
    "$real_release"/*) ;;
    *) printf 'its parent resolves outside the release (%s)' "$parent" ;;
  esac
}
refused=""
for entry in "$@"; do
  rel=${entry#?:}
  why=$(unsafe "$rel")
  if [ -n "$why" ]; then
    printf '@unsafe %s: %s\n' "$rel" "$why" >&2
    refused=1
  fi
done
if [ -n "$refused" ]; then exit 69; fi # REMOTE_EXIT.sharedUnsafe
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
