# The kernel's estimate of memory available for new processes, in kB (MemAvailable); nothing
# where /proc/meminfo does not say it (not Linux, or a kernel before 3.14).
if [ -r /proc/meminfo ]; then
  awk '/^MemAvailable:/ { print $2; exit }' /proc/meminfo
fi
