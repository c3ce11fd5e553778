#!/usr/bin/env bash
# Install the Debian packages the product and its tests need, when they are missing.
set -eu
PACKAGES="chromium libharfbuzz-subset0 poppler-utils qpdf fonts-dejavu-core libnss3-tools"
missing=""
for pkg in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then
  echo "ERROR: missing Debian packages:$missing (run as root: apt-get install$missing)" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
echo "Installing Debian packages:$missing"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
