#!/bin/sh
# Renders reconciler.policy.hcl for one node and the apps that may run on it.
# Usage: render-reconciler-policy.sh NODE APP...
set -eu
if [ "$#" -lt 2 ]; then
  echo "usage: $0 NODE APP..." >&2
  exit 2
fi
node=$1
shift
printf '%s\n' "$node" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' || { echo "$0: invalid node name: $node" >&2; exit 2; }
for app in "$@"; do
  printf '%s\n' "$app" | grep -Eq '^[a-z0-9][a-z0-9-]{0,62}$' || { echo "$0: invalid app name: $app" >&2; exit 2; }
done
prefix=${SACAR_PREFIX:-sacar}
printf '%s\n' "$prefix" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_/-]*$' || { echo "$0: invalid SACAR_PREFIX: $prefix" >&2; exit 2; }
template="$(dirname "$0")/reconciler.policy.hcl"
echo "# sacar reconciler policy for node $node; apps: $*"
# everything but the header comment and the per-app block, for the node
sed -e '1,/^$/d' -e '/^# per app: begin$/,/^# per app: end$/d' "$template" |
  sed -e "s|<node>|$node|g" -e "s|\"sacar/|\"$prefix/|g"
# the per-app block, once per app
for app in "$@"; do
  printf '\n'
  sed -n -e '/^# per app: begin$/,/^# per app: end$/{/^# per app: /d;p;}' "$template" |
    sed -e "s|<node>|$node|g" -e "s|<app>|$app|g" -e "s|\"sacar/|\"$prefix/|g"
done
