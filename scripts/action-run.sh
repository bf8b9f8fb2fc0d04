#!/usr/bin/env bash
# The steps of the nexus GitHub Action (action.yml), kept here so that they can be run and tested
# outside GitHub with GITHUB_OUTPUT / GITHUB_STEP_SUMMARY pointing at ordinary files.
#
#   action-run.sh run       runs bundle/nexus.mjs (nexus and its dependencies in one committed file,
#                           made by scripts/bundle.mjs) with the Node.js on the PATH: no install, no
#                           compiler.
#                           The action's inputs are given as environment variables:
#     INPUT_COMMAND            the nexus command and its flags (default "deploy --rolling"); split on
#                              whitespace, no quoting
#     INPUT_CONFIG             the config file, relative to INPUT_WORKING_DIRECTORY (default: nexus's own)
#     INPUT_SSH_PRIVATE_KEY    a private key: written to a 0600 file in a private temp dir, masked in
#                              the log, never echoed; removed when nexus exits
#     INPUT_KNOWN_HOSTS        known_hosts lines for the servers (else the config's ssh.knownHosts)
#     INPUT_WORKING_DIRECTORY  where to run (default: the current directory)
#
# nexus itself (GITHUB_ACTIONS=true) folds its log in groups, annotates errors, appends the summary
# table to $GITHUB_STEP_SUMMARY and writes `release` and `result` to $GITHUB_OUTPUT.
set -euo pipefail

action_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# The bundle's oldest supported Node.js (package.json engines; set for undici 7, which the bundle
# no longer holds, and kept until an older Node.js is tested).
require_node() {
  local version
  if ! version="$(node -p 'process.versions.node' 2>/dev/null)"; then
    echo "::error title=nexus::Node.js is not on the PATH: add actions/setup-node (node-version: 20 or later) before this action" >&2
    return 2
  fi
  local major minor patch
  IFS=. read -r major minor patch <<<"$version"
  if ((major < 20 || (major == 20 && (minor < 18 || (minor == 18 && patch < 1))))); then
    echo "::error title=nexus::Node.js $version is too old: nexus needs 20.18.1 or later (actions/setup-node)" >&2
    return 2
  fi
}

run() {
  local command="${INPUT_COMMAND:-deploy --rolling}"
  local config="${INPUT_CONFIG:-}"
  local workdir="${INPUT_WORKING_DIRECTORY:-.}"
  local key="${INPUT_SSH_PRIVATE_KEY:-}"
  local known_hosts="${INPUT_KNOWN_HOSTS:-}"
  # Nothing started from here on needs the inputs: keep the key out of nexus's environment.
  unset INPUT_SSH_PRIVATE_KEY INPUT_KNOWN_HOSTS

  if ! cd "$workdir" 2>/dev/null; then
    echo "::error title=nexus::working-directory: $workdir is not a directory of the checkout" >&2
    if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "result=failed" >>"$GITHUB_OUTPUT"; fi
    return 2
  fi
  local args=()
  [ -n "$config" ] && args+=(--config "$config")

  umask 077
  local tmp
  tmp="$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/nexus-action.XXXXXXXX")"
  # shellcheck disable=SC2064 # expand $tmp now
  trap "rm -rf '$tmp'" EXIT

  if [ -n "$key" ]; then
    # A secret pasted with literal "\n" separators, or CRLF line ends, still makes a valid key file.
    if [[ "$key" != *$'\n'* && "$key" == *'\n'* ]]; then key="${key//\\n/$'\n'}"; fi
    key="${key//$'\r'/}"
    if [ "${GITHUB_ACTIONS:-}" = true ]; then
      # Mask each line of the key body: a workflow command the runner consumes, never shown in the log.
      local line
      while IFS= read -r line; do
        case "$line" in "" | -----*) continue ;; esac
        printf '::add-mask::%s\n' "$line"
      done <<<"$key"
    fi
    printf '%s\n' "$key" >"$tmp/id_key" # printf is a builtin: the key is on no command line
    args+=(--ssh-key "$tmp/id_key")
  fi
  key=""

  if [ -n "$known_hosts" ]; then
    printf '%s\n' "$known_hosts" >"$tmp/known_hosts"
    args+=(--known-hosts "$tmp/known_hosts")
  fi

  local words=()
  read -r -a words <<<"$command"
  if [ "${words[0]:-}" = nexus ]; then words=("${words[@]:1}"); fi

  local code=0
  if require_node; then
    node "$action_dir/bundle/nexus.mjs" ${args[@]+"${args[@]}"} ${words[@]+"${words[@]}"} || code=$?
  else
    code=$?
  fi

  # nexus writes `result` itself; when it could not (a usage error, a crash), say how it ended.
  if [ -n "${GITHUB_OUTPUT:-}" ] && ! grep -q '^result=' "$GITHUB_OUTPUT" 2>/dev/null; then
    if [ "$code" -eq 0 ]; then echo "result=success"; else echo "result=failed"; fi >>"$GITHUB_OUTPUT"
  fi
  return "$code"
}

case "${1:-run}" in
  run) run ;;
  *)
    echo "usage: $0 run" >&2
    exit 2
    ;;
esac
