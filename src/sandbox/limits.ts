/**
 * The most app hosts a sandbox starts: each is an sshd, a PM2 daemon and the app (~110 MB, so
 * 50 hosts take ~5.5 GB). A module of its own: the CLI checks `--hosts` without loading the
 * sandbox code.
 */
export const MAX_HOSTS = 50;
