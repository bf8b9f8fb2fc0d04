import { reloadAndConfirm } from "../remote/commands.js";
import { shq } from "../remote/quote.js";

/** Exit codes of the apply script, beyond reloadAndConfirm's 70 (no pid file) and 71 (no hand-over). */
export const APPLY_EXIT = {
  testFailed: 80,
  cannotWrite: 81,
  /** The file changed since nexus read it (another run edited it): read again and retry. */
  changed: 82,
  lockTimeout: 83,
  noSha256sum: 84,
} as const;

export interface ApplyScriptInput {
  file: string;
  /** sha256 (hex) of the content nexus read and edited: the script writes only over that content. */
  expectedSha256: string;
  testCommand: string;
  reloadCommand: string;
  pidFile: string;
  lockTimeoutSeconds?: number;
}

/**
 * One round trip that writes the new upstream file (from stdin), tests, reloads and confirms.
 *
 * - Concurrent runs (two deploys, a drain during a deploy, two apps sharing the file) must not
 *   lose each other's edits: the whole edit runs under `flock` on the file itself, and writes
 *   only if the file still holds what nexus read (compare-and-swap on its sha256; exit 82 asks
 *   for a fresh read). The file is written in place, so its inode (the lock), owner and mode stay.
 * - The backup is a private temp file (never beside the file: a directory included with `*`
 *   would load it as a second upstream), removed once the change is in force or restored.
 * - Works as an unprivileged user: it needs only read+write on the file itself; the test and
 *   reload commands bring their own `sudo -n` when Nginx belongs to root.
 */
export function applyScript(input: ApplyScriptInput): string {
  const file = shq(input.file);
  const wait = input.lockTimeoutSeconds ?? 30;
  const restore = [
    "restore() {",
    `  if cat "$backup" > ${file}; then rm -f "$backup"; else echo "could not restore the upstream file: its previous content is in $backup" >&2; fi`,
    "}",
  ].join("\n");
  return [
    `if [ ! -r ${file} ] || [ ! -w ${file} ]; then echo "$(id -un 2>/dev/null || echo this user) cannot read and write $(ls -ld ${file} 2>&1)" >&2; exit ${APPLY_EXIT.cannotWrite}; fi`,
    // Without flock (not Linux util-linux), the compare-and-swap still catches most overlaps.
    `if command -v flock >/dev/null 2>&1; then exec 9<${file}; flock -w ${Math.max(1, Math.floor(wait))} 9 || { echo "another run has held the lock on the upstream file for ${wait}s" >&2; exit ${APPLY_EXIT.lockTimeout}; }; fi`,
    `command -v sha256sum >/dev/null 2>&1 || exit ${APPLY_EXIT.noSha256sum}`,
    `current=$(sha256sum < ${file} | cut -c1-64)`,
    `if [ "$current" != ${shq(input.expectedSha256)} ]; then exit ${APPLY_EXIT.changed}; fi`,
    `backup=$(umask 077 && mktemp "\${TMPDIR:-/tmp}/nexus-upstream.XXXXXX") || { echo "cannot create a backup file in \${TMPDIR:-/tmp}" >&2; exit ${APPLY_EXIT.cannotWrite}; }`,
    `if ! cat ${file} > "$backup"; then rm -f "$backup"; exit ${APPLY_EXIT.cannotWrite}; fi`,
    restore,
    `if ! cat > ${file}; then restore; exit ${APPLY_EXIT.cannotWrite}; fi`,
    // 9<&-: a daemon started by these commands must not inherit (and keep) the lock.
    `if ! test_output=$( { ${input.testCommand}
} 2>&1 9<&- ); then restore; printf '%s\\n' "$test_output" >&2; exit ${APPLY_EXIT.testFailed}; fi`,
    `( ${reloadAndConfirm(input.reloadCommand, input.pidFile)}
) 9<&-`,
    "rc=$?",
    // 70/71: the new config is in force (unconfirmed or slow hand-over): keep it.
    `if [ "$rc" -ne 0 ] && [ "$rc" -ne 70 ] && [ "$rc" -ne 71 ]; then restore; else rm -f "$backup"; fi`,
    'exit "$rc"',
  ].join("\n");
}
