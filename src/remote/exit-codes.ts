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
  /** A shared path would be linked through a symlink in the release (or out of it). */
  sharedUnsafe: 69,
  /** The process manager is not installed on the server. */
  notInstalled: 127,
} as const;
