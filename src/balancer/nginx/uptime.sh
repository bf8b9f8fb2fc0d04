# A centisecond clock for the waits: /proc/uptime is "12345.67 …"; no arithmetic on its fraction
# as written (a zero-led "05" would be octal). Without /proc (not Linux), whole seconds from `date`.
uptime_cs() {
  if [ -r /proc/uptime ] && read -r up rest < /proc/uptime; then echo $(( ${up%.*} * 100 + 1${up#*.} - 100 ))
  else echo $(( $(date +%s) * 100 )); fi
}
