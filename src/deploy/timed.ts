import type { Emit, Step } from "../events/events.js";

/** Runs one step of a server, emitting start, then done (with its note) or fail. */
export async function timed(
  emit: Emit,
  server: string,
  step: Step,
  work: () => Promise<unknown>,
): Promise<void> {
  emit({ type: "step", server, step, status: "start" });
  const started = Date.now();
  try {
    const note = await work();
    emit({
      type: "step",
      server,
      step,
      status: "done",
      ms: Date.now() - started,
      message: typeof note === "string" && note ? note : undefined,
    });
  } catch (error) {
    emit({
      type: "step",
      server,
      step,
      status: "fail",
      ms: Date.now() - started,
      message: (error as Error).message,
    });
    throw error;
  }
}
