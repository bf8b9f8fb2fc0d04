#!/usr/bin/env bash
# The steps of the nexus GitHub Action (action.yml), kept here so that they can be run and tested
# outside GitHub with GITHUB_OUTPUT / GITHUB_STEP_SUMMARY pointing at ordinary files.
#
#   action-run.sh run       runs bundle/nexus.mjs (nexus and its dependencies in one committed file,
#                           made by scripts/bundle.mjs) with the Node.js on the PATH: no install, no
#                           compiler.
#                           The action's inputs are given as environment variables:
#     INPUT_COMMAND            the nexus command and its flags (default "deploy --rolling"); split into
#                              words as a shell would ('single' and "double" quotes, backslash
#                              escapes), with no expansion: nothing in it is ever run
#     INPUT_SSH_KEY_PASSPHRASE the key's passphrase: masked, given to nexus as $NEXUS_SSH_PASSPHRASE
#     INPUT_CONFIG             the config file, relative to INPUT_WORKING_DIRECTORY (default: nexus's own)
#     INPUT_SSH_PRIVATE_KEY    a private key: written to a 0600 file in a private temp dir, masked in
#                              the log, never echoed; removed when nexus exits
#     INPUT_KNOWN_HOSTS        known_hosts lines for the servers (else the config's ssh.knownHosts)
#     INPUT_WORKING_DIRECTORY  where to run (default: the current directory)
#
# nexus itself (GITHUB_ACTIONS=true) folds its log in groups, annotates errors, appends the summary
# table to $GITHUB_STEP_SUMMARY (or, when it stopped before one, its errors) and writes `release`
# (only when that release serves somewhere) and `result` to $GITHUB_OUTPUT. When nexus could not
# write a summary at all (a usage error, Node.js missing), this script writes one line there.
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

# The command input split into words as a shell would (quotes, backslashes), one NUL after each,
# by Node (no eval: nothing in the text is expanded or run). An unclosed quote is a usage error.
split_words() {
  node -e '
const text = process.argv[1];
const words = [];
let word = null;
let quote = null;
for (let i = 0; i < text.length; i++) {
  const c = text[i];
  if (quote === "\x27") { if (c === "\x27") quote = null; else word += c; continue; }
  if (quote === "\x22") {
    if (c === "\x22") quote = null;
    else if (c === "\\" && "\x22\\$`".includes(text[i + 1] ?? "")) word += text[++i];
    else word += c;
    continue;
  }
  if (/\s/.test(c)) { if (word !== null) words.push(word); word = null; continue; }
  word ??= "";
  if (c === "\x27" || c === "\x22") quote = c;
  else if (c === "\\" && i + 1 < text.length) word += text[++i];
  else word += c;
}
if (quote) { console.error("::error title=nexus::command: a quote is not closed: " + text); process.exit(2); }
if (word !== null) words.push(word);
process.stdout.write(words.map((w) => w + "\0").join(""));
' "$1"
}

run() {
  local command="${INPUT_COMMAND:-deploy --rolling}"
  local config="${INPUT_CONFIG:-}"
  local workdir="${INPUT_WORKING_DIRECTORY:-.}"
  local key="${INPUT_SSH_PRIVATE_KEY:-}"
  local known_hosts="${INPUT_KNOWN_HOSTS:-}"
  local passphrase="${INPUT_SSH_KEY_PASSPHRASE:-}"
  # Nothing started from here on needs the inputs: keep the key out of nexus's environment.
  unset INPUT_SSH_PRIVATE_KEY INPUT_KNOWN_HOSTS INPUT_SSH_KEY_PASSPHRASE
  if [ -n "$passphrase" ]; then
    [ "${GITHUB_ACTIONS:-}" = true ] && printf '::add-mask::%s\n' "$passphrase"
    export NEXUS_SSH_PASSPHRASE="$passphrase"
  fi
  passphrase=""
  local summary_before=0
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$GITHUB_STEP_SUMMARY" ]; then
    summary_before=$(wc -c <"$GITHUB_STEP_SUMMARY")
  fi

  if ! cd "$workdir" 2>/dev/null; then
    echo "::error title=nexus::working-directory: $workdir is not a directory of the checkout" >&2
    if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "result=failed" >>"$GITHUB_OUTPUT"; fi
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
      printf '### ❌ nexus: failed, nothing deployed: working-directory %s is not a directory of the checkout\n\n' "$workdir" >>"$GITHUB_STEP_SUMMARY"
    fi
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

  local code=0
  local words=()
  if require_node; then
    if split_words "$command" >"$tmp/words"; then
      local word
      while IFS= read -r -d '' word; do words+=("$word"); done <"$tmp/words"
      if [ "${words[0]:-}" = nexus ]; then words=("${words[@]:1}"); fi
      node "$action_dir/bundle/nexus.mjs" ${args[@]+"${args[@]}"} ${words[@]+"${words[@]}"} || code=$?
    else
      code=2
    fi
  else
    code=$?
  fi

  # Every outcome gets a step summary: nexus writes its own; if it could not, say how it ended.
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    local summary_after=0
    [ -f "$GITHUB_STEP_SUMMARY" ] && summary_after=$(wc -c <"$GITHUB_STEP_SUMMARY")
    if [ "$summary_after" -eq "$summary_before" ]; then
      if [ "$code" -eq 0 ]; then
        printf '### ✅ nexus %s: done\n\n' "${words[0]:-command}"
      else
        printf '### ❌ nexus %s: failed (exit %s), nothing deployed: see the log\n\n' "${words[0]:-command}" "$code"
      fi >>"$GITHUB_STEP_SUMMARY"
    fi
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
