/** The width of a terminal stream, or undefined when it is not a terminal or reports no real width. */
export function terminalWidth(stream: { isTTY?: boolean; columns?: number }): number | undefined {
  const { columns } = stream;
  return stream.isTTY && typeof columns === "number" && Number.isFinite(columns) && columns > 0
    ? columns
    : undefined;
}

/**
 * Spinners and cursor movement only on a terminal with a real width, not in CI, not with
 * --plain. A terminal that reports 0 columns (a pseudo-terminal nobody sized, some CI runners)
 * gets plain lines: the spinner library divides by the width and, at 0, loops forever.
 */
export function wantsInteractiveOutput(
  stream: { isTTY?: boolean; columns?: number },
  env: NodeJS.ProcessEnv,
  plain: boolean | undefined,
): boolean {
  return terminalWidth(stream) !== undefined && !env.CI && !plain;
}
