#!/usr/bin/env bash
# Installs Debian packages for the test scripts without starting the
# packages' own services (nginx on port 80, php-fpm, nutcracker): a
# policy-rc.d that refuses service starts is in place during the install
# if none exists.
#
#   scripts/apt-install.sh PKG...
set -euo pipefail
policy=/usr/sbin/policy-rc.d
added=0
rc=0
export DEBIAN_FRONTEND=noninteractive
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added=1
fi
apt-get update && apt-get install -y "$@" || rc=$?
((added)) && rm -f "$policy"
exit $rc
