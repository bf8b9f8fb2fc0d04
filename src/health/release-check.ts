/** `health.checkRelease`: true (required), false (ignored), "auto" (checked when /health reports one). */
export type CheckReleaseSetting = boolean | "auto";

export interface ReleaseCheck {
  release: string;
  /** true: a /health without a release fails; false ("auto"): it passes and the process checks decide. */
  required: boolean;
  /** Told once per run when /health reports no release under "auto". */
  onMissing?: (hint: string) => void;
}

export const REPORT_RELEASE_HINT =
  'the app\'s /health reports no release, so the gate relies on the process checks (new pid, no restart, minimum uptime). To have nexus check that the new release answers, make /health answer JSON such as {"status":"ok","release": process.env.NEXUS_RELEASE} (health.checkRelease: "auto" then checks it)';

let hinted = false;

/**
 * What the health probe expects of /health's `release` for this setting, or undefined when it
 * is not checked. `warn` receives the hint for apps that report no release, once per process.
 */
export function releaseCheck(
  setting: CheckReleaseSetting,
  release: string,
  warn?: (event: { type: "warn"; message: string }) => void,
): ReleaseCheck | undefined {
  if (setting === false) return undefined;
  if (setting === true) return { release, required: true };
  return {
    release,
    required: false,
    onMissing: (hint) => {
      if (hinted) return;
      hinted = true;
      warn?.({ type: "warn", message: hint });
    },
  };
}

/** Why a /health answer fails the release check, or undefined when it passes. */
export function releaseProblem(
  check: ReleaseCheck | undefined,
  reported: string | undefined,
): string | undefined {
  if (!check) return undefined;
  if (reported === undefined) {
    if (!check.required) {
      check.onMissing?.(REPORT_RELEASE_HINT);
      return undefined;
    }
    return `reports no release (health.checkRelease is true: make /health answer {"release": process.env.NEXUS_RELEASE}, or set health.checkRelease to "auto" or false)`;
  }
  if (reported === check.release) return undefined;
  return `answers release ${reported}, expected ${check.release} (health.checkRelease: if /health's "release" is not nexus's release id, set it to false)`;
}
