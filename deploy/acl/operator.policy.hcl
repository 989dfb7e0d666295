# Consul ACL policy for the people who run `sacar app set`, `sacar release`,
# `sacar deploy`, `rollback`, `lock`/`unlock` and `unpin`. A template: render it with
# the apps they operate,
#
#   deploy/acl/render-policy.sh operator shop blog > operator.hcl
#   consul acl policy create -name sacar-operator -rules @operator.hcl
#   consul acl token create -description "sacar operator alice" -policy-name sacar-operator
#
# Operators read everything (sacar status) and write the app's desired state. Not the
# nodes' registrations, status and locks, nor the controller's leader key or GitHub
# bookkeeping: a mistaken command cannot fake a node's state.

key_prefix "sacar/" {
  policy = "list"
}

# per app: begin
key "sacar/<app>/config" {
  policy = "write"
}

key "sacar/<app>/lock" {
  policy = "write"
}

key "sacar/<app>/pin" {
  policy = "write"
}

key "sacar/<app>/deploy" {
  policy = "write"
}

key_prefix "sacar/<app>/releases/" {
  policy = "write"
}
# per app: end
