file=$1 pid_file=$2 test_command=$3 dump_command=$4 reload_list_command=$5 reload_program=$6
say user "$(id -un)"
[ -e "$file" ] && say up_exists 1
[ -r "$file" ] && say up_readable 1
[ -w "$file" ] && say up_writable 1
say up_real "$(readlink -f "$file" 2>/dev/null)"
# shellcheck disable=SC2012 # the owner and mode of one file, for a message
say up_owner "$(ls -ld "$file" 2>/dev/null | awk '{print $3":"$4" "$1}')"
command -v flock >/dev/null 2>&1 && say flock 1
[ -r "$file" ] && { echo @@upstream; cat "$file"; echo; echo @@end; }
say uid "$(id -u)"
if [ -r "$pid_file" ]; then
  say pid_readable 1
  p=$(cat "$pid_file")
  [ -n "$p" ] && [ -d "/proc/$p" ] && { say pid_alive 1; say master_uid "$(stat -c %u "/proc/$p" 2>/dev/null)"; }
fi
# The test runs for real (nginx -t changes nothing); the reload is only asked of sudo.
out=$(sh -c "$test_command" 2>&1 </dev/null); say test_rc $?
echo @@test; printf "%s\n" "$out" | tail -n 5; echo @@end
if [ -n "$dump_command" ]; then
  out=$(sh -c "$dump_command" 2>&1 </dev/null); say dump_rc $?
  echo @@dump; printf "%s\n" "$out" | grep -E '^# configuration file |password|sudo|emerg' | head -n 5000; echo @@end
fi
if [ -n "$reload_list_command" ]; then
  out=$(sh -c "$reload_list_command" 2>&1 </dev/null); say reload_sudo_rc $?
  echo @@reload; printf "%s\n" "$out" | tail -n 3; echo @@end
  out=$(sudo -n -l 2>&1 </dev/null); echo @@sudolist; printf "%s\n" "$out" | head -n 100; echo @@end
else
  # Without sudo to ask, whether the reload's command is there at all.
  say reload_bin "$(command -v "$reload_program" 2>/dev/null)"
fi
exit 0
