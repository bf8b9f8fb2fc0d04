#!/usr/bin/env bash
# Installs the Debian packages the tests need when they are missing: sshd, ssh-keygen, Nginx,
# HAProxy, socat, pgrep, git, ShellCheck, and sudo + flock (as root, the sandbox logs in as an
# unprivileged deploy user that may only test and reload Nginx through a sudoers rule, like a real
# server). Needs root (as in CI); otherwise it names what to install and exits 1.
set -euo pipefail

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# HAProxy runs beside Nginx in the test sandbox (the balancer tests run for both drivers); socat
# talks to its admin socket (nexus falls back to node when socat is missing, the tests use both).
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v socat >/dev/null || missing+=(socat)
command -v pgrep >/dev/null || missing+=(procps)
command -v git >/dev/null || missing+=(git)
command -v shellcheck >/dev/null || missing+=(shellcheck)
command -v sudo >/dev/null || missing+=(sudo)
command -v flock >/dev/null || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting system services (an Nginx on :80, an HAProxy nobody asked for).
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -n "$policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
