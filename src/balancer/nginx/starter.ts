import { userInfo } from "node:os";
import type { StarterAnswers, StarterSpec } from "../driver.js";

/** Nginx's test and reload: a non-root login goes through sudo -n, with the full path sudoers needs. */
export function defaultNginxCommands(user: string | undefined): { test: string; reload: string } {
  const root = (user || userInfo().username) === "root";
  return root
    ? { test: "nginx -t", reload: "nginx -s reload" }
    : { test: "sudo -n /usr/sbin/nginx -t", reload: "sudo -n /usr/sbin/nginx -s reload" };
}

/** As `nexus nginx-config` prints it: outside conf.d/, whose files Nginx includes in `http`. */
export function defaultServersFile(name: string): string {
  return `/etc/nginx/nexus/${name}-servers.conf`;
}

const DEFAULT_ACCESS_LOG = "/var/log/nginx/access.log";

function withDefaults({ name, user, values }: StarterAnswers): Record<string, string | undefined> {
  const commands = defaultNginxCommands(user);
  return {
    ...values,
    upstreamFile: values.upstreamFile ?? defaultServersFile(name),
    testCommand: values.testCommand ?? commands.test,
    reloadCommand: values.reloadCommand ?? commands.reload,
  };
}

/** `nexus init` for Nginx: the servers file, how to test and reload, and the access log the watch reads. */
export const nginxStarter: StarterSpec = {
  label: "Nginx",
  configFor: "the servers file and the upstream block",
  options: [
    {
      flags: "--upstream-file <path>",
      description:
        "Nginx: the servers file on the balancer host: server lines only, included inside the upstream block (never in conf.d/, which Nginx includes in http)",
    },
    {
      flags: "--test-command <cmd>",
      description:
        'Nginx: how to test its config (default: "sudo -n /usr/sbin/nginx -t", "nginx -t" for root)',
    },
    {
      flags: "--reload-command <cmd>",
      description:
        'Nginx: how to reload it (default: "sudo -n /usr/sbin/nginx -s reload", "nginx -s reload" for root)',
    },
    { flags: "--pid-file <path>", description: "Nginx: its master's pid file (default: /run/nginx.pid)" },
    {
      flags: "--access-log <path>",
      description: `with --watch, Nginx: its access log (default: ${DEFAULT_ACCESS_LOG})`,
    },
  ],
  async ask(answers, ask) {
    const defaults = withDefaults(answers);
    const values = answers.values;
    values.upstreamFile ??= await ask(
      "servers file on it (server lines only, included inside the upstream block)",
      defaults.upstreamFile,
    );
    values.testCommand ??= await ask("command that tests the Nginx config", defaults.testCommand);
    values.reloadCommand ??= await ask("command that reloads Nginx", defaults.reloadCommand);
    if (answers.watch)
      values.accessLog ??= await ask(
        "Nginx access log (in the nexus format: nexus nginx-config prints it)",
        DEFAULT_ACCESS_LOG,
      );
  },
  entry(answers) {
    const values = withDefaults(answers);
    return {
      host: answers.host,
      upstreamFile: values.upstreamFile,
      testCommand: values.testCommand,
      reloadCommand: values.reloadCommand,
      ...(values.pidFile ? { pidFile: values.pidFile } : {}),
      // The watch reads the access log (in the nexus format: `nexus nginx-config` prints it).
      ...(answers.watch ? { accessLog: values.accessLog ?? DEFAULT_ACCESS_LOG } : {}),
    };
  },
};
