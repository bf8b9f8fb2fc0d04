say user "$(id -un)"
say home "$HOME"
say path "$PATH"
for b in node npm pnpm yarn corepack; do p=$(command -v "$b" 2>/dev/null) && say "$b"_path "$p"; done
command -v node >/dev/null 2>&1 && say node_version "$(node -v 2>&1)"
command -v npm >/dev/null 2>&1 && say npm_version "$(npm -v 2>&1)"
# nvm installs Node under ~/.nvm, on the PATH of interactive shells only.
for f in "$HOME"/.nvm/versions/node/*/bin/node; do [ -x "$f" ] && say nvm_bin "$(dirname "$f")"; done
d=$1
while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
say deploy_existing "$d"
[ -w "$d" ] && [ -x "$d" ] && say deploy_writable 1
# shellcheck disable=SC2012 # the owner and mode of one directory, for a message
say deploy_owner "$(ls -ld "$d" 2>/dev/null | awk '{print $3":"$4" "$1}')"
say free_kb "$(df -Pk "$d" 2>/dev/null | awk 'NR==2 {print $4}')"
exit 0
