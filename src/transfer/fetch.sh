dest=$1 expected=$2 timeout=$3
shift 3
part="$dest.part"
IFS= read -r url || [ -n "$url" ]
case "$url" in http://*|https://*) ;; *) echo "nexus: no artifact URL on stdin" >&2; exit 75;; esac # FETCH_EXIT.download
rm -f "$part"
limit=""; if command -v timeout >/dev/null 2>&1; then limit="timeout $timeout"; fi
# The first fetcher this server has, in the order asked; BusyBox's wget has no -i, so only GNU
# wget counts.
fetcher=""
for candidate in "$@"; do
  command -v "$candidate" >/dev/null 2>&1 || continue
  if [ "$candidate" = wget ] && ! wget --version >/dev/null 2>&1; then continue; fi
  fetcher=$candidate
  break
done
rc=0
# Each fetcher reads the URL from a pipe fed by the shell's builtin printf, so the URL (its token
# is the only key to the artifact) is in no process's command line for `ps` to show.
case "$fetcher" in
  # -K -: curl reads options from stdin; fetchInput leaves no quote or backslash in the URL.
  curl) printf 'url = "%s"\n' "$url" | curl -fsS --connect-timeout 15 --max-time "$timeout" -o "$part" -K - || rc=$? ;;
  # wget's -T limits each read, not the whole download; timeout(1) bounds the rest when present.
  wget)
    # shellcheck disable=SC2086 # $limit: "timeout N" as two words, or nothing
    printf '%s\n' "$url" | $limit wget -q -T 30 -O "$part" -i - || rc=$?
    ;;
  node) printf '%s' "$url" | node -e "${program:?}" "$part" "$timeout" || rc=$? ;;
  *)
    list=$(printf '%s, ' "$@")
    echo "nexus: this server has none of ${list%, } to fetch the artifact over HTTP" >&2
    exit 127 # FETCH_EXIT.noFetcher
    ;;
esac
if [ "$rc" -ne 0 ]; then rm -f "$part"; echo "nexus: download with $fetcher failed (exit $rc)" >&2; exit 75; fi # FETCH_EXIT.download
actual=$(sha256 "$part")
if [ "$actual" != "$expected" ]; then rm -f "$part"; echo "checksum mismatch: expected $expected, got $actual" >&2; exit 65; fi # FETCH_EXIT.checksum
mv -f "$part" "$dest"
