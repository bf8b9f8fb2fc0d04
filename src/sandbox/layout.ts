import { isAbsolute, join } from "node:path";
import {
  renderProxySettings,
  renderServersFile,
  renderUpgradeMap,
  renderUpstreamBlock,
} from "../balancer/nginx/upstream.js";
import { accessLogDirective, logFormatDirective } from "../balancer/nginx/watch/log-format.js";
import { bastionInfo, type SandboxBastion } from "./bastion.js";
import { SandboxError } from "./errors.js";
import { haproxyInfo, type SandboxHaproxy } from "./haproxy.js";
import { MAX_HOSTS } from "./limits.js";

export interface SandboxOptions {
  /**
   * Absolute path the user names, e.g. `<project>/.sandbox`: sandboxUp makes it a link to the state
   * directory (state-dir.ts). resolveOptions gets the state directory itself.
   */
  dir: string;
  /** Where state directories are made (default /var/tmp; unit tests use a temp dir). */
  stateRoot?: string;
  /** Default "127.0.0."; tests use "127.0.1." so both can coexist. */
  ipPrefix?: string;
  /** Default 3 (nexus-alpha, nexus-beta, nexus-gamma), at most 50 (MAX_HOSTS). */
  hosts?: number;
  /** Default 2222. */
  sshPort?: number;
  /** Default 3000. */
  appPort?: number;
  /** Default 8080. */
  lbPort?: number;
  /** Hosts (by name) whose sshd has no SFTP subsystem, like servers where it is disabled. */
  noSftp?: string[];
  /**
   * Hosts (by name) whose SFTP subsystem is this command instead of internal-sftp, e.g. a wrapper
   * around /usr/lib/openssh/sftp-server. `%h` is replaced by the host's home directory.
   */
  sftpServer?: Record<string, string>;
  /** "haproxy": also run HAProxy beside Nginx on the LB host, on the next port (see haproxy.ts). */
  balancer?: "nginx" | "haproxy";
  /**
   * Who the hosts log in as. "deploy-user" (the default when started as root, as in CI): the
   * unprivileged user nexus-deploy, with Nginx as root and a sudoers rule for its test and reload,
   * like a real server. "self": whoever runs the sandbox (the only choice when not root).
   * NEXUS_SANDBOX_LOGIN=self|deploy-user overrides the default.
   */
  login?: SandboxLogin;
  /**
   * Hosts (by name) that, like a fresh server, accept only the deploy user's password (random,
   * in `passwordFile`) until a key is installed in its ~/.ssh/authorized_keys. Deploy-user mode only.
   */
  passwordLogin?: string[];
  /**
   * The app hosts are reached only through a jump host (`sandbox up --bastion`, see bastion.ts):
   * their sshd accept logins only from the bastion's address. Root only (network namespaces).
   */
  bastion?: boolean;
  /** With `bastion`: the app hosts also accept direct logins (the bench compares both on one sandbox). */
  bastionDirect?: boolean;
}

export type SandboxLogin = "deploy-user" | "self";

export interface SandboxHost {
  name: string;
  address: string;
  sshPort: number;
  /** Local absolute path of the host's home directory (`~` inside its SSH sessions). */
  home: string;
  /** `address:appPort`, where nexus runs the app on this host. */
  appAddress: string;
}

export interface SandboxLb {
  /** Name of the host running nginx. */
  host: string;
  url: string;
  /** Absolute path on the LB host. */
  upstreamFile: string;
  testCommand: string;
  reloadCommand: string;
  /** Path on the LB host of the Nginx master's pid file. */
  pidFile: string;
  /** Nginx's access log, in the nexus format (what rolling.watch reads). */
  accessLog: string;
}

export interface SandboxInfo {
  dir: string;
  hosts: SandboxHost[];
  lb: SandboxLb;
  /** With `balancer: "haproxy"`. */
  haproxy?: SandboxHaproxy;
  /** Private key accepted by every host. */
  clientKey: string;
  knownHosts: string;
  /** OpenSSH client config with one `Host` entry per sandbox host (`ssh -F <sshConfig> nexus-alpha`). */
  sshConfig: string;
  /** The login user on every host. */
  user: string;
  login: SandboxLogin;
  /** With passwordLogin: the file (0600) holding the deploy user's password. */
  passwordFile?: string;
  /** With `bastion`: the jump host every app host is reached through. */
  bastion?: SandboxBastion;
}

const GREEK = [
  "alpha",
  "beta",
  "gamma",
  "delta",
  "epsilon",
  "zeta",
  "eta",
  "theta",
  "iota",
  "kappa",
  "lambda",
  "mu",
];

/** nexus-alpha … nexus-mu, then nexus-h13 … nexus-h50. */
export const HOST_NAMES = Array.from(
  { length: MAX_HOSTS },
  (_, i) => `nexus-${GREEK[i] ?? `h${String(i + 1).padStart(2, "0")}`}`,
);

export const DEFAULTS = {
  ipPrefix: "127.0.0.",
  hosts: 3,
  sshPort: 2222,
  appPort: 3000,
  lbPort: 8080,
} as const;

export const NGINX_UPSTREAM_NAME = "nexus_app";

// Linux caps unix socket paths (sun_path) at 108 bytes including the NUL; PM2 puts its sockets in PM2_HOME.
const MAX_UNIX_SOCKET_PATH = 107;

export interface ResolvedOptions {
  dir: string;
  ipPrefix: string;
  hosts: number;
  sshPort: number;
  appPort: number;
  lbPort: number;
  noSftp?: string[];
  sftpServer?: Record<string, string>;
  balancer?: "haproxy";
  login?: SandboxLogin;
  passwordLogin?: string[];
  bastion?: boolean;
  bastionDirect?: boolean;
}

function checkPort(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 65535) {
    throw new SandboxError(`${name} must be an integer between 1 and 65535, got ${value}`);
  }
  return value;
}

function checkLogin(value: string): SandboxLogin {
  if (value !== "deploy-user" && value !== "self") {
    throw new SandboxError(`login must be "deploy-user" or "self", got "${value}"`);
  }
  return value;
}

export function resolveOptions(opts: SandboxOptions): ResolvedOptions {
  if (!isAbsolute(opts.dir))
    throw new SandboxError(`sandbox dir must be an absolute path, got "${opts.dir}"`);
  // sshd_config and nginx.conf would need quoting, and AuthorizedKeysFile splits on whitespace.
  if (/[\s"'\\$;{}#]/.test(opts.dir)) {
    throw new SandboxError(
      `sandbox dir must not contain whitespace, quotes or shell/config metacharacters: "${opts.dir}"`,
    );
  }
  const ipPrefix = opts.ipPrefix ?? DEFAULTS.ipPrefix;
  const prefixMatch = /^127\.(\d{1,3})\.(\d{1,3})\.$/.exec(ipPrefix);
  if (!prefixMatch || Number(prefixMatch[1]) > 255 || Number(prefixMatch[2]) > 255) {
    throw new SandboxError(`ipPrefix must look like "127.X.Y." (loopback only), got "${ipPrefix}"`);
  }
  const hosts = opts.hosts ?? DEFAULTS.hosts;
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > HOST_NAMES.length) {
    throw new SandboxError(`hosts must be an integer between 1 and ${HOST_NAMES.length}, got ${hosts}`);
  }
  const resolved: ResolvedOptions = {
    dir: opts.dir.replace(/\/+$/, "") || "/",
    ipPrefix,
    hosts,
    sshPort: checkPort("sshPort", opts.sshPort ?? DEFAULTS.sshPort),
    appPort: checkPort("appPort", opts.appPort ?? DEFAULTS.appPort),
    lbPort: checkPort("lbPort", opts.lbPort ?? DEFAULTS.lbPort),
    ...(opts.noSftp ? { noSftp: opts.noSftp } : {}),
    ...(opts.sftpServer ? { sftpServer: opts.sftpServer } : {}),
    ...(opts.balancer === "haproxy" ? { balancer: "haproxy" as const } : {}),
    ...(opts.login ? { login: checkLogin(opts.login) } : {}),
    ...(opts.passwordLogin ? { passwordLogin: opts.passwordLogin } : {}),
    ...(opts.bastion ? { bastion: true } : {}),
    ...(opts.bastion && opts.bastionDirect ? { bastionDirect: true } : {}),
  };
  if (opts.balancer !== undefined && opts.balancer !== "nginx" && opts.balancer !== "haproxy") {
    throw new SandboxError(`balancer must be "nginx" or "haproxy", got "${String(opts.balancer)}"`);
  }
  for (const name of [
    ...(opts.noSftp ?? []),
    ...Object.keys(opts.sftpServer ?? {}),
    ...(opts.passwordLogin ?? []),
  ]) {
    if (!HOST_NAMES.slice(0, hosts).includes(name)) {
      throw new SandboxError(
        `noSftp / sftpServer / passwordLogin: "${name}" is not one of the ${hosts} sandbox host(s)`,
      );
    }
  }
  for (const command of Object.values(opts.sftpServer ?? {})) {
    if (!command.trim() || /[\r\n]/.test(command)) {
      throw new SandboxError(`sftpServer: expected a one-line command, got ${JSON.stringify(command)}`);
    }
  }
  if (resolved.sshPort === resolved.appPort) {
    throw new SandboxError(`sshPort and appPort must differ (both ${resolved.sshPort})`);
  }
  const socketPath = join(hostPaths(resolved.dir, HOST_NAMES[0] as string).pm2Home, "pub.sock");
  if (socketPath.length > MAX_UNIX_SOCKET_PATH) {
    throw new SandboxError(
      `sandbox dir is too deep: PM2 would need the socket path ${socketPath} (${socketPath.length} bytes, the limit is ${MAX_UNIX_SOCKET_PATH}); use a shorter dir`,
    );
  }
  return resolved;
}

export function hostPaths(dir: string, name: string) {
  const root = join(dir, "hosts", name);
  const home = join(root, "home");
  return {
    root,
    home,
    pm2Home: join(home, ".pm2"),
    sshdConfig: join(root, "sshd_config"),
    sshdLog: join(root, "sshd.log"),
    sshdPid: join(root, "sshd.pid"),
    hostKey: join(root, "ssh_host_ed25519_key"),
    /** Used instead of the shared client file when the host logs in as the deploy user (who must read it). */
    authorizedKeys: join(home, ".ssh", "authorized_keys"),
  };
}

export function sandboxPaths(dir: string) {
  const client = join(dir, "client");
  return {
    bin: join(dir, "bin"),
    /** `nexus-sandbox-nginx -t` / `-s reload`: the sandbox's Nginx, through sudo -n in deploy-user mode. */
    nginxWrapper: join(dir, "bin", "nexus-sandbox-nginx"),
    state: join(dir, "sandbox.json"),
    client,
    clientKey: join(client, "id_ed25519"),
    authorizedKeys: join(client, "authorized_keys"),
    passwordFile: join(client, "password"),
    knownHosts: join(dir, "known_hosts"),
    sshConfig: join(dir, "ssh_config"),
  };
}

/** Beside the LB host's home, not in it: root's Nginx files must not sit in a directory the login user owns. */
export function nginxPaths(lbRoot: string) {
  const prefix = join(lbRoot, "nginx");
  return {
    prefix,
    conf: join(prefix, "nginx.conf"),
    upstream: join(prefix, "upstream.conf"),
    pid: join(prefix, "nginx.pid"),
    errorLog: join(prefix, "error.log"),
    accessLog: join(prefix, "access.log"),
  };
}

export function lbAddress(ipPrefix: string): string {
  return `${ipPrefix}10`;
}

export interface LoginInfo {
  login: SandboxLogin;
  /** Absolute path of nginx: the sudoers rule names it, and sudo matches the resolved path. */
  nginx: string;
}

export function buildInfo(
  opts: ResolvedOptions,
  user: string,
  { login, nginx }: LoginInfo = { login: "self", nginx: "nginx" },
): SandboxInfo {
  const hosts: SandboxHost[] = HOST_NAMES.slice(0, opts.hosts).map((name, i) => {
    const address = `${opts.ipPrefix}${11 + i}`;
    return {
      name,
      address,
      sshPort: opts.sshPort,
      home: hostPaths(opts.dir, name).home,
      appAddress: `${address}:${opts.appPort}`,
    };
  });
  const paths = sandboxPaths(opts.dir);
  const lbUrl = `http://${lbAddress(opts.ipPrefix)}:${opts.lbPort}`;
  const lbHost = HOST_NAMES[0] as string;
  const nginxFiles = nginxPaths(hostPaths(opts.dir, lbHost).root);
  const nginxCommand = nginxArgv(nginx, nginxFiles.prefix).join(" ");
  const sudo = login === "deploy-user" ? "sudo -n " : "";
  return {
    dir: opts.dir,
    hosts,
    lb: {
      host: lbHost,
      url: lbUrl,
      upstreamFile: nginxFiles.upstream,
      testCommand: `${sudo}${nginxCommand} -t`,
      reloadCommand: `${sudo}${nginxCommand} -s reload`,
      pidFile: nginxFiles.pid,
      accessLog: nginxFiles.accessLog,
    },
    ...(opts.balancer === "haproxy"
      ? { haproxy: haproxyInfo(opts.dir, HOST_NAMES[0] as string, lbUrl) }
      : {}),
    clientKey: paths.clientKey,
    knownHosts: paths.knownHosts,
    sshConfig: paths.sshConfig,
    user,
    login,
    ...(opts.bastion ? { bastion: bastionInfo(opts.dir, opts.ipPrefix, opts.sshPort) } : {}),
  };
}

/** How the sandbox starts its Nginx; the test and reload commands append `-t` / `-s reload`. */
export function nginxArgv(nginx: string, prefix: string): string[] {
  return [nginx, "-p", `${prefix}/`, "-c", "nginx.conf"];
}

// npm would otherwise call registry.npmjs.org (update check, audit) even for installs from local tarballs.
const NPM_QUIET_ENV = "NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_AUDIT=false NPM_CONFIG_FUND=false";

export interface SshdConfigInput {
  host: SandboxHost;
  dir: string;
  /** PATH for SSH sessions. */
  path: string;
  user: string;
  /** Default: the sandbox's shared client authorized_keys. */
  authorizedKeysFile?: string;
  /** Accept the login user's password (a fresh server before `nexus setup`). */
  passwordAuthentication?: boolean;
  /** The SFTP subsystem: internal-sftp (undefined), none (null), or this command. */
  sftp?: string | null;
  /** Logins only from this address (the bastion's, in bastion mode). */
  allowFrom?: string;
}

export function renderSshdConfig({
  host,
  dir,
  path,
  user,
  authorizedKeysFile,
  passwordAuthentication,
  sftp,
  allowFrom,
}: SshdConfigInput): string {
  const p = hostPaths(dir, host.name);
  const subsystem =
    sftp === null
      ? "# No SFTP subsystem on this host (sandbox option noSftp).\n"
      : `Subsystem sftp ${sftp === undefined ? `internal-sftp -d ${p.home}` : sftp.replaceAll("%h", p.home)}\n`;
  return `# Generated by the nexus sandbox for ${host.name}; rewritten on every sandbox up.
Port ${host.sshPort}
ListenAddress ${host.address}
HostKey ${p.hostKey}
PidFile ${p.sshdPid}
AuthorizedKeysFile ${authorizedKeysFile ?? sandboxPaths(dir).authorizedKeys}
AllowUsers ${allowFrom ? `${user}@${allowFrom}` : user}
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication ${passwordAuthentication ? "yes" : "no"}
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
PermitUserEnvironment no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxStartups 64:30:128
MaxSessions 64
LogLevel VERBOSE
${subsystem}SetEnv HOME=${p.home} PM2_HOME=${p.pm2Home} PATH=${path} NEXUS_SANDBOX_HOST=${host.name} ${NPM_QUIET_ENV}
`;
}

/**
 * Bash sources ~/.bashrc for commands run over SSH; sshd starts them in the passwd home, so move to
 * the sandbox one. `delaySeconds`: a login shell as slow to start as a real server's whose
 * ~/.bashrc loads nvm, pyenv or conda (0.2–0.6 s), paid by every command sshd starts.
 */
export function renderBashrc(delaySeconds = 0): string {
  const slow =
    delaySeconds > 0
      ? `# A slow login shell, like one loading nvm (sandbox option loginDelay).\nsleep ${delaySeconds}\n`
      : "";
  return `# Generated by the nexus sandbox: make relative paths in SSH commands resolve against this home, like on a real server.
if [ -n "$NEXUS_SANDBOX_HOST" ] && [ -d "$HOME" ]; then cd "$HOME" || true; fi
${slow}`;
}

export function knownHostsLine(address: string, port: number, publicKey: string): string {
  const [type, key] = publicKey.trim().split(/\s+/);
  if (!type || !key)
    throw new SandboxError(`malformed public host key for ${address}: "${publicKey.trim()}"`);
  const hostPattern = port === 22 ? address : `[${address}]:${port}`;
  return `${hostPattern} ${type} ${key}`;
}

export function renderSshClientConfig(info: SandboxInfo): string {
  const jump = info.bastion
    ? `  ProxyJump ${info.user}@${info.bastion.address}:${info.bastion.sshPort}\n`
    : "";
  const blocks = info.hosts.map(
    // The address too: a config that names hosts by address (like the repo's deploy.config.json
    // with ssh.configFile) gets the login user from here, whichever mode the sandbox runs in.
    (h) => `Host ${h.name} ${h.address}
  HostName ${h.address}
  Port ${h.sshPort}
  User ${info.user}
  IdentityFile ${info.clientKey}
  IdentitiesOnly yes
  UserKnownHostsFile ${info.knownHosts}
  StrictHostKeyChecking yes
${jump}`,
  );
  if (info.bastion)
    blocks.push(`Host ${info.bastion.name} ${info.bastion.address}
  HostName ${info.bastion.address}
  Port ${info.bastion.sshPort}
  User ${info.user}
  IdentityFile ${info.clientKey}
  IdentitiesOnly yes
  UserKnownHostsFile ${info.knownHosts}
  StrictHostKeyChecking yes
`);
  return `# Generated by the nexus sandbox. Usage: ssh -F ${info.sshConfig} nexus-alpha\n\n${blocks.join("\n")}`;
}

/**
 * The seed's servers (max_fails=3 fail_timeout=30s), as `nexus nginx-config` prints the servers
 * file: the upstream block (least_conn, keepalive 32) in the root-owned nginx.conf includes it.
 */
export function renderUpstreamConf(appAddresses: string[]): string {
  return `# Managed by the nexus sandbox, included inside upstream ${NGINX_UPSTREAM_NAME} { } of nginx.conf.
${renderServersFile({ servers: appAddresses })}`;
}

export interface NginxConfInput {
  listen: string;
  /** Emit `user root;` so workers can use temp dirs under a path closed to "nobody"; only valid as root. */
  userRoot: boolean;
  stubStatus: boolean;
}

/** Every path is relative to the `-p` prefix. */
export function renderNginxConf({ listen, userRoot, stubStatus }: NginxConfInput): string {
  const status = stubStatus
    ? `
        location = /nginx-status {
            stub_status;
            access_log off;
        }
`
    : "";
  return `# Generated by the nexus sandbox; rewritten on every sandbox up. Run: nginx -p <this dir>/ -c nginx.conf
${userRoot ? "user root;\n" : ""}worker_processes 2;
daemon on;
pid nginx.pid;
error_log error.log notice;

events {
    worker_connections 1024;
}

http {
${logFormatDirective("    ")}
${accessLogDirective("access.log", "    ")}

    client_body_temp_path tmp/client_body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    server_tokens off;
    keepalive_timeout 65s;

${renderUpgradeMap("    ")}
${renderUpstreamBlock({ name: NGINX_UPSTREAM_NAME, include: "upstream.conf" })
  .trimEnd()
  .replace(/^/gm, "    ")}

    server {
        listen ${listen};
        server_name _;

        location / {
${renderProxySettings(NGINX_UPSTREAM_NAME, "            ")}        }
${status}    }
}
`;
}

/** The wrapper behind the repo's deploy.config.json test/reload commands (the same in both modes). */
export function renderNginxWrapper(argv: string[], sudo: boolean): string {
  return `#!/bin/sh
# Generated by the nexus sandbox: its Nginx${sudo ? ", through the sudoers rule of the deploy user" : ""}.
exec ${sudo ? "sudo -n " : ""}${argv.join(" ")} "$@"
`;
}
