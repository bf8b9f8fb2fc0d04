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
  /** Connections still open when a drain's drainTimeout ended (WebSockets, SSE), and what closed them. */
  connectionsCut?: ConnectionsCut;
  note?: string;
}

/**
 * Long-lived connections a drain's timeout left open on a server: shut by the balancer (HAProxy's
 * `shutdown sessions server`) or cut by the restart (PM2's SIGINT: the app's contract, docs/apps.md).
 */
export interface ConnectionsCut {
  byBalancer: number;
  byRestart: number;
}

export interface WatchedRate {
  requests: number;
  failures: number;
  /** failures / requests, 0 with no requests. */
  rate: number;
  /** The 99th percentile of its response times (ms), when the balancer logs them. */
  p99?: number;
}

/** Response-time percentiles in ms, and how many response times they come from. */
export interface LatencyPercentiles {
  p50: number;
  p95: number;
  p99: number;
  samples: number;
}

export type Outcome = "success" | "failed" | "needs-human" | "interrupted";

export type DeployEvent =
  | { type: "begin"; command: string; release?: string; destination?: string; servers: string[] }
  | { type: "phase"; phase: string; message: string }
  | {
      type: "step";
      server: string;
      step: Step;
      status: "start" | "done" | "fail";
      message?: string;
      ms?: number;
      /** drain done: the connections its timeout left open, and what closes them. */
      connectionsCut?: ConnectionsCut;
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
      /**
       * "unjudged": inconclusive after every extension, and rolling.watch.inconclusive is "pass";
       * "inconclusive": the same under "halt" or "rollback".
       */
      result: "pass" | "breach" | "unjudged" | "inconclusive" | "interrupted";
      /** The judge's verdict. */
      verdict: "pass" | "fail" | "inconclusive";
      /** What decided a fail or an inconclusive verdict. */
      metric?: "errors" | "latency" | "health";
      /** The one-sided p-value of the test that decided. */
      p?: number;
      /** What the server was compared with: the untouched servers, the fleet before the deploy, nothing. */
      reference: "untouched" | "baseline" | "none";
      requests: number;
      failures: number;
      rate: number;
      /** The failure ratio above which the error effect was large enough to count. */
      limit: number;
      /** Which minimum effect set that limit: maxFailureRatio, untouched / baseline (times maxRatioToUntouched), or health. */
      threshold: "maxFailureRatio" | "untouched" | "baseline" | "health";
      untouchedRate?: number;
      baselineRate?: number;
      /** The server's response times during the window. */
      latency?: LatencyPercentiles;
      /** The reference's response times. */
      referenceLatency?: LatencyPercentiles;
      /** The fleet's before the deploy, when the reference is the untouched servers. */
      baselineLatency?: LatencyPercentiles;
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
