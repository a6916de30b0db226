#!/usr/bin/env bash
# Install the Debian packages listed in $1 that are missing. Needs root; without root it
# names what is missing and goes on (the tests that need them then fail loudly).
set -euo pipefail
list=${1:?usage: install-debs.sh FILE}
mapfile -t wanted < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$list" | awk '{print $1}')
missing=()
for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "install-debs: not root; please install: apt-get install ${missing[*]}" >&2
    exit 0
fi
echo "install-debs: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
