/** Exit codes the remote scripts use to say what went wrong; the parsers map them to messages. */
export const REMOTE_EXIT = {
  /** The artifact's sha256 is not the one packed. */
  checksumMismatch: 65,
  /** A release with this id is already on the server. */
  releaseExists: 66,
  /** The archive has entries or symlinks that lead out of the release. */
  unsafeArchive: 67,
  /** A shared file the config lists is not in <deployPath>/shared/. */
  sharedMissing: 68,
  /** Nginx reloaded, but its master's pid file could not be read to confirm it. */
  reloadUnconfirmed: 70,
  /** Nginx reloaded, but its old workers did not hand over in time. */
  reloadTimeout: 71,
  /** `nginx -t` refused the edited file (restored). */
  configTestFailed: 80,
  /** The upstream file could not be written. */
  writeFailed: 81,
  /** Another process holds the balancer's edit lock. */
  editLocked: 82,
  /** The process manager is not installed on the server. */
  notInstalled: 127,
} as const;
