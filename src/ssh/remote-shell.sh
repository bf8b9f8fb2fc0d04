_nx_d=$(mktemp -d "${TMPDIR:-/tmp}/nexus-shell.XXXXXX" 2>/dev/null) || {
  echo "@nx-fail cannot create a directory in ${TMPDIR:-/tmp}"
  exit 1
}
if ! mkfifo "$_nx_d/q" 2>/dev/null; then
  rm -rf "$_nx_d"
  echo "@nx-fail mkfifo failed"
  exit 1
fi
_nx_setsid=
if command -v setsid >/dev/null 2>&1; then _nx_setsid=setsid; fi
_nx_writer() {
  w_done=
  w_n=0
  while read -r w_id w_code; do
    printf '@nx %s %s\n' "$w_id" "$w_code"
    cat "$_nx_d/$w_id.o" "$_nx_d/$w_id.e"
    printf '\n@nx-end %s\n' "${_nx_token:?}"
    # Files of sent results go in batches: an rm per command would double what one costs here.
    w_done="$w_done $w_id"
    w_n=$((w_n + 1))
    if [ "$w_n" -ge 16 ]; then
      (cd "$_nx_d" && for w in $w_done; do rm -f "$w".[ioepk]; done) &
      w_done=
      w_n=0
    fi
  done
  wait
  rm -rf "$_nx_d"
}
# The writer reads the FIFO until no one holds its write end: this shell (until its stdin ends, or
# it is killed) and the wrappers of commands still running. Then it removes the directory.
_nx_writer < "$_nx_d/q" &
exec 8> "$_nx_d/q"
_nx_signal() {
  read -r s_pid < "$_nx_d/$1.p" || return 0
  if [ -n "$_nx_setsid" ]; then kill -s "$2" -- "-$s_pid" 2>/dev/null || kill -s "$2" "$s_pid" 2>/dev/null
  else kill -s "$2" "$s_pid" 2>/dev/null; fi
  return 0
}
# ID STDIN COMMAND [k]: "k", a command that may be stopped (Ctrl-C, a timeout) runs in a process
# group of its own (setsid); any other as a plain "sh -c" (what a command costs here is process
# start-ups). Never evaluated in a subshell of this shell: its $$ would be this shell's.
_nx_step() {
  s_id=$1
  s_in=/dev/null
  if [ -n "$2" ]; then s_in="$_nx_d/$s_id.i"; printf '%s' "$2" > "$s_in"; fi
  if [ "${4:-}" != k ]; then
    sh -c "$3" < "$s_in" > "$_nx_d/$s_id.o" 2> "$_nx_d/$s_id.e" 8>&-
    s_code=$?
    printf '\n@nx-sep %s\n' "${_nx_token:?}" >> "$_nx_d/$s_id.o"
    echo "$s_id $s_code" >&8
    return
  fi
  $_nx_setsid sh -c "$3" < "$s_in" > "$_nx_d/$s_id.o" 2> "$_nx_d/$s_id.e" 8>&- &
  s_pid=$!
  echo "$s_pid" > "$_nx_d/$s_id.p"
  if [ -e "$_nx_d/$s_id.k" ]; then read -r s_sig < "$_nx_d/$s_id.k" && _nx_signal "$s_id" "$s_sig"; fi
  wait "$s_pid"
  s_code=$?
  : > "$_nx_d/$s_id.p"
  # Stopped (a kill was asked): what it started gets 3 s to follow it, then SIGKILL, before the
  # result goes back, so nothing it started outlives what nexus is told.
  if [ -e "$_nx_d/$s_id.k" ] && [ -n "$_nx_setsid" ]; then
    s_n=0
    while kill -s 0 -- "-$s_pid" 2>/dev/null; do
      if [ "$s_n" -ge 3 ]; then kill -s KILL -- "-$s_pid" 2>/dev/null; break; fi
      sleep 1
      s_n=$((s_n + 1))
    done
  fi
  printf '\n@nx-sep %s\n' "${_nx_token:?}" >> "$_nx_d/$s_id.o"
  echo "$s_id $s_code" >&8
}
_nx_run() {
  _nx_step "$@" < /dev/null > /dev/null 2>&1 &
}
# FIRST_ID STDIN COMMAND STDIN COMMAND...: one after the other, ids FIRST_ID, FIRST_ID+1...
_nx_seq() {
  (
    q_id=$1
    shift
    while [ "$#" -ge 2 ]; do
      _nx_step "$q_id" "$1" "$2"
      q_id=$((q_id + 1))
      shift 2
    done
  ) < /dev/null > /dev/null 2>&1 &
}
_nx_kill() {
  echo "$2" > "$_nx_d/$1.k"
  if [ -s "$_nx_d/$1.p" ]; then _nx_signal "$1" "$2"; fi
}
printf '@nx-hello %s %s\n' "${_nx_token:?}" "$HOME"
