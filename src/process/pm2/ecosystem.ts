export interface EcosystemApp {
  name: string;
  script: string;
  cwd: string;
  env: Record<string, string>;
  killTimeout: number;
  outFile: string;
  errorFile: string;
}

/**
 * PM2 pins the physical cwd at start and restart does not pick up a new script path
 * (Unitech/pm2#1663, #5939), so each release has its own ecosystem file naming its directory,
 * and the app is deleted and started afresh from it.
 */
export function ecosystemFile(app: EcosystemApp): string {
  return `${JSON.stringify(
    {
      apps: [
        {
          name: app.name,
          script: app.script,
          cwd: app.cwd,
          env: app.env,
          kill_timeout: app.killTimeout,
          // Treat an app that dies within 2s of start as crashed, so a crash loop shows as restarts.
          min_uptime: 2000,
          max_restarts: 10,
          autorestart: true,
          merge_logs: true,
          out_file: app.outFile,
          error_file: app.errorFile,
        },
      ],
    },
    null,
    2,
  )}\n`;
}
