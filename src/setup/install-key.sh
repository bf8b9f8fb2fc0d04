key=$1 keys="$HOME/.ssh/authorized_keys"
umask 077
mkdir -p "$HOME/.ssh" && touch "$keys" || exit
if ! grep -qxF -- "$key" "$keys"; then
  # A file whose last line has no newline would get the key glued onto that line.
  [ -z "$(tail -c 1 "$keys")" ] || echo >> "$keys"
  printf '%s\n' "$key" >> "$keys" || exit
fi
chmod 700 "$HOME/.ssh" && chmod 600 "$keys"
