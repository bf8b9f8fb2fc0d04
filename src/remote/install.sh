set -eu
release=$1 current=$2
cd "$release"
if [ ! -f package.json ]; then echo @skipped; exit 0; fi
if [ -f package-lock.json ] && [ -d "$current/node_modules" ] \
  && cmp -s package-lock.json "$current/package-lock.json" && cmp -s package.json "$current/package.json"; then
  cp -al "$current/node_modules" node_modules
  echo @reused
  exit 0
fi
if [ -f package-lock.json ]; then
  npm ci --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error
else
  npm install --omit=dev --prefer-offline --no-audit --no-fund --loglevel=error
fi
echo @installed
