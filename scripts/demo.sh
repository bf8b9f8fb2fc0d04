#!/usr/bin/env bash
# npm run demo: install, build, start the local sandbox, deploy fixtures/app with a rolling deploy,
# then show that every server answers through the load balancer with the new release.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-system-deps.sh
[ -d node_modules ] || npm ci --no-audit --no-fund
npm run build --silent
node bin/nexus.js sandbox up
node bin/nexus.js deploy --rolling
echo
echo "Through the load balancer (http://127.0.0.10:8080):"
for _ in 1 2 3 4 5 6; do
  curl -s http://127.0.0.10:8080/ || node -e 'fetch("http://127.0.0.10:8080/").then(r=>r.text()).then(t=>console.log(t))'
  echo
done
echo
node bin/nexus.js status
echo
echo "Try: node bin/nexus.js drain nexus-beta | enable nexus-beta | rollback | status; stop with: node bin/nexus.js sandbox down"
