import { EXIT } from "../errors.js";

export type Step =
  | "connect"
  | "lock"
  | "upload"
  | "extract"
  | "install"
  | "drain"
  | "switch"
  | "restart"
  | "gate"
  | "enable"
  | "restore";

/** The user's hooks (config `hooks`): two on the servers, two on this machine. */
export type HookName = "beforeRoll" | "afterStart" | "afterDeploy" | "afterFailure";

export type ServerResult = "deployed" | "rolled back" | "restored" | "not reached" | "needs human" | "failed";

export interface SummaryRow {
  server: string;
  result: ServerResult;
  /** The release the server serves now, if known. */
  release?: string;
  /** Seconds out of rotation during this command. */
  outOfRotation?: number;
  /** Requests, failures and their ratio at the balancer during its watch window (rolling.watch). */
  watched?: WatchedRate;
  note?: string;
}

export interface WatchedRate {
  requests: number;
  failures: number;
  /** failures / requests, 0 with no requests. */
  rate: number;
}

export type Outcome = "success" | "failed" | "needs-human" | "interrupted";

export type DeployEvent =
  | { type: "begin"; command: string; release?: string; servers: string[] }
  | { type: "phase"; phase: string; message: string }
  | {
      type: "step";
      server: string;
      step: Step;
      status: "start" | "done" | "fail";
      message?: string;
      ms?: number;
    }
  | { type: "progress"; server: string; sent: number; total: number }
  | { type: "info"; message: string; server?: string }
  | { type: "warn"; message: string; server?: string }
  | {
      type: "error";
      message: string;
      server?: string;
      /** A config error's place: the config file, its line and column (1-based). */
      file?: string;
      line?: number;
      column?: number;
    }
  | { type: "gate-failed"; server: string; reason: string; timeline: string[]; logs: string[] }
  | {
      /** The end of one server's watch window (rolling.watch). */
      type: "watch";
      server: string;
      /** "unjudged": fewer than minRequests even after the extension; it passes, with a warning. */
      result: "pass" | "breach" | "unjudged" | "interrupted";
      requests: number;
      failures: number;
      rate: number;
      /** The failure ratio the server was allowed. */
      limit: number;
      /** The limit that decided: maxFailureRatio, untouched / baseline (times maxRatioToUntouched), or health. */
      threshold: "maxFailureRatio" | "untouched" | "baseline" | "health";
      untouchedRate?: number;
      baselineRate?: number;
      seconds: number;
      message: string;
    }
  | {
      type: "hook";
      hook: HookName;
      /** The server it runs on; none for the local hooks. */
      server?: string;
      status: "start" | "output" | "done" | "fail";
      /** start: the command; output: one line of its output (secrets masked); done/fail: a note. */
      message?: string;
      ms?: number;
    }
  | { type: "log"; server: string; stream: "out" | "err"; line: string }
  | {
      type: "summary";
      outcome: Outcome;
      release?: string;
      rows: SummaryRow[];
      exitCode: number;
      seconds: number;
    };

export type Emit = (event: DeployEvent) => void;

export function exitCodeForOutcome(outcome: Outcome): number {
  return {
    success: EXIT.ok,
    failed: EXIT.failed,
    "needs-human": EXIT.needsHuman,
    interrupted: EXIT.interrupted,
  }[outcome];
}
