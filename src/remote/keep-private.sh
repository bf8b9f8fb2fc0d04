file=$1 kept="$1.prev"
if [ -f "$file" ]; then
  (umask 077 && cp -p -- "$file" "$kept") && echo @kept
else
  rm -f -- "$kept"
fi
