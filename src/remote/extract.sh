set -eu
archive=$1 release=$2 expected=$3 stamp=$4
tmp="$release.partial"
# The archive is spent whatever happens; a refused or failed extraction leaves no partial tree.
trap 'rm -rf "$archive" "$tmp"' EXIT
actual=$(sha256 "$archive")
if [ "$actual" != "$expected" ]; then
  echo "checksum mismatch: expected $expected, got $actual" >&2
  exit 65 # REMOTE_EXIT.checksumMismatch
fi
if [ -e "$release" ]; then
  echo "release ${release##*/} already exists on this server" >&2
  exit 66 # REMOTE_EXIT.releaseExists
fi
# Absolute and ../ member names are refused outright (GNU tar would strip or skip them).
escaping=$(tar -tzf "$archive" | awk '/^\// || /(^|\/)\.\.(\/|$)/' | head -n 3)
if [ -n "$escaping" ]; then
  echo "refused: the artifact has entries outside the release: $escaping" >&2
  exit 67 # REMOTE_EXIT.unsafeArchive
fi
rm -rf "$tmp"
mkdir -p "$tmp"
tar -xzf "$archive" -C "$tmp" --no-same-owner --no-same-permissions
# Symlinks may not lead out of the release: each is resolved and compared with the canonical
# directory (the deploy path itself may go through a symlink); one that cannot be resolved is refused.
# readlink -m resolves what exists and the rest by name: bin/x -> ../node_modules/y/cli.js is
# inside, though node_modules comes later (busybox has only -f, which needs the parents).
canonical=$(cd "$tmp" && pwd -P)
outside=$(find "$tmp" -type l -exec sh -c '
  c=$1 t=$2; shift 2
  for link in "$@"; do
    target=$(readlink -m "$link" 2>/dev/null || readlink -f "$link") || target=""
    case "$target" in "$c" | "$c"/*) ;; *) printf "%s\n" "${link#"$t"/}" ;; esac
  done' nexus "$canonical" "$tmp" {} +)
if [ -n "$outside" ]; then
  echo "refused: the artifact holds a symlink out of the release: $outside" >&2
  exit 67 # REMOTE_EXIT.unsafeArchive
fi
mv "$tmp" "$release"
mkdir -p "${stamp%/*}"
: > "$stamp"
