/**
 * A reader that went away (`nexus nginx-config | head -2`) ends our output, not the command: an
 * EPIPE on stdout or stderr, and every later write to that closed stream, is dropped quietly.
 * The command itself runs on (a deploy piped into `head` must still restore what it drained)
 * and exits with its own code. Any other write error is thrown as before.
 */
export function endOutputQuietlyOnClosedPipe(...streams: NodeJS.WritableStream[]): void {
  for (const stream of streams) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EPIPE" || error.code === "ERR_STREAM_DESTROYED") return;
      throw error;
    });
  }
}
