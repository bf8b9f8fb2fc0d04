import { scriptFile } from "../remote/script-file.js";

/**
 * The server side of the remote shell (`remote-shell.ts`), in `remote-shell.sh`: text that `sh -s` reads from the exec
 * channel's stdin, after `_nx_token=<token>` on a line of its own. It then reads requests, each a
 * line of shell built by nexus with every value quoted (`_nx_run ID STDIN COMMAND`, `_nx_seq`
 * for commands that must run one after the other, `_nx_kill ID SIGNAL`), exactly as the login
 * shell would have parsed an exec request's command.
 *
 * - Each command runs in the background, its stdin a file holding the request's STDIN, its stdout
 *   and stderr files in a private directory, as `sh -c COMMAND`; one that may have to be stopped
 *   (`_nx_run ID STDIN COMMAND k`) in a session (and process group) of its own when `setsid`
 *   exists, so that a kill reaches everything it started.
 * - One writer process owns the channel's stdout: when a command ends, its wrapper appends a
 *   separator to its stdout file and posts "ID CODE" on a FIFO (a line that short is written
 *   atomically); the writer sends `@nx ID CODE`, both files, and an end line. The separator and
 *   the end line carry the token, which no command's output holds: results never mix, and a child
 *   that still writes after its command ended cannot shift the frames that follow.
 * - `kill -s SIG -- -PGID`: dash takes neither `kill -0 --` nor `kill -TERM -PGID`.
 * - A kill writes a mark first, then signals the group if its pid is known; the wrapper writes the
 *   pid, then looks for a mark: whichever comes second sends the signal.
 * - Before anything else it says `@nx-hello TOKEN HOME`, so output a noisy ~/.bashrc printed before
 *   it is skipped (and $HOME costs no exchange of its own); `@nx-fail REASON` if it cannot start
 *   (no writable TMPDIR, no mkfifo).
 * - Per command it forks a wrapper and starts `sh` and `cat` (a stoppable one `setsid` too):
 *   process start-ups are what a command costs here (an exec channel costs sshd's session
 *   process and the login shell).
 * - When the channel closes (nexus ended, the connection dropped), stdin ends and this shell
 *   exits; commands still running finish, as they would have on an exec channel of their own, and
 *   the writer, once the last has, removes the directory and exits. If this shell is killed, the
 *   same happens: results of commands in flight still come back.
 */
export const REMOTE_SHELL_SCRIPT = scriptFile(import.meta.url, "remote-shell.sh");
