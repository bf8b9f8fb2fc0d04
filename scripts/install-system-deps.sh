#!/usr/bin/env bash
# Installs the Debian packages the sandbox needs (sshd, ssh-keygen, Nginx, pgrep, git, sudo) when
# they are missing. sudo: as root, the sandbox logs in as an unprivileged deploy user that may only
# test and reload Nginx through a sudoers rule, like a real server. Needs root (as in CI); otherwise it names what to install and exits 1.
set -euo pipefail

missing=()
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v ssh-keygen >/dev/null || missing+=(openssh-client)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v pgrep >/dev/null || missing+=(procps)
command -v git >/dev/null || missing+=(git)
command -v sudo >/dev/null || missing+=(sudo)
command -v flock >/dev/null || missing+=(util-linux)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "missing packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Keep package scripts from starting system services (an Nginx on :80 nobody asked for).
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [ -n "$policy_added" ]; then rm -f /usr/sbin/policy-rc.d; fi
