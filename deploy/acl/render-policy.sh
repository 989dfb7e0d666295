#!/bin/sh
# Renders one of the policy templates in this directory for its nodes and apps.
# Usage: render-policy.sh reconciler -n NODE APP...
#        render-policy.sh controller -n NODE [-n NODE]... APP...
#        render-policy.sh operator APP...
# With SACAR_PREFIX set, its value takes the place of sacar/.
set -eu
usage() {
  echo "usage: $0 reconciler -n NODE APP... | controller -n NODE [-n NODE]... APP... | operator APP..." >&2
  exit 2
}
[ "$#" -ge 1 ] || usage
role=$1
shift
case $role in reconciler | controller | operator) ;; *) usage ;; esac
nodes=""
while [ "$#" -gt 0 ] && [ "$1" = "-n" ]; do
  [ "$#" -ge 2 ] || usage
  printf '%s\n' "$2" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' || { echo "$0: invalid node name: $2" >&2; exit 2; }
  nodes="$nodes $2"
  shift 2
done
[ "$#" -ge 1 ] || usage
for app in "$@"; do
  printf '%s\n' "$app" | grep -Eq '^[a-z0-9][a-z0-9-]{0,62}$' || { echo "$0: invalid app name: $app" >&2; exit 2; }
done
count=$(printf '%s\n' $nodes | grep -c . || true)
case $role in
  reconciler) [ "$count" -eq 1 ] || { echo "$0: reconciler wants exactly one -n NODE" >&2; exit 2; } ;;
  controller) [ "$count" -ge 1 ] || { echo "$0: controller wants -n NODE for each node it may run on" >&2; exit 2; } ;;
  operator) [ "$count" -eq 0 ] || { echo "$0: operator takes no -n" >&2; exit 2; } ;;
esac
prefix=${SACAR_PREFIX:-sacar}
printf '%s\n' "$prefix" | grep -Eq '^[A-Za-z0-9][A-Za-z0-9_/-]*$' || { echo "$0: invalid SACAR_PREFIX: $prefix" >&2; exit 2; }
template="$(dirname "$0")/$role.policy.hcl"
node=$(printf '%s\n' $nodes | head -n 1)
block() { sed -n -e "/^# per $1: begin\$/,/^# per $1: end\$/{/^# per $1: /d;p;}" "$template"; }
{
echo "# sacar $role policy;${nodes:+ nodes:$nodes;} apps: $*"
# everything but the header comment and the repeated blocks
sed -e '1,/^$/d' -e '/^# per node: begin$/,/^# per node: end$/d' -e '/^# per app: begin$/,/^# per app: end$/d' "$template" |
  sed -e "s|<node>|$node|g" -e "s|\"sacar/|\"$prefix/|g"
for n in $nodes; do
  printf '\n'
  block node | sed -e "s|<node>|$n|g"
done
for app in "$@"; do
  printf '\n'
  block app | sed -e "s|<node>|$node|g" -e "s|<app>|$app|g" -e "s|\"sacar/|\"$prefix/|g"
done
} | cat -s
