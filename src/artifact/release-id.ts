export interface GitInfo {
  commit: string;
  dirty: boolean;
}

/** The app's git commit, if its root is inside a git checkout. */
export async function gitInfo(root: string): Promise<GitInfo | undefined> {
  const { execa } = await import("execa");
  const head = await execa("git", ["rev-parse", "--short=7", "HEAD"], { cwd: root, reject: false });
  if (head.exitCode !== 0) return undefined;
  const status = await execa("git", ["status", "--porcelain", "--", "."], { cwd: root, reject: false });
  return { commit: head.stdout.trim(), dirty: status.stdout.trim() !== "" };
}

/** UTC timestamp, then the short commit ("-dirty" when the tree has changes): 20261126T204501Z-1a2b3c4. */
export function makeReleaseId(now: Date, git?: GitInfo): string {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  if (!git) return stamp;
  return `${stamp}-${git.commit}${git.dirty ? "-dirty" : ""}`;
}
