# Consul ACL policy for the people and CI jobs that run the operator commands:
# `sacar app set`, `release`, `deploy`, `rollback`, `lock`, `unlock`, `unpin`, `logs`
# and `status`.
#
#   consul acl policy create -name sacar-operator -rules @deploy/acl/operator.policy.hcl
#   consul acl token create -description "sacar operator: ana" -policy-name sacar-operator
#
# They write desired state (config, releases/, deploy, lock, pin) and read everything.
# Node registrations and the controller's leader lock are read-only: a person never
# has reason to fake a node or a leader. Consul matches keys by prefix only, so the
# nodes' status keys under each app stay writable; Sacar's commands never write them.
# No session rule: the operator commands take no Consul lock.
key_prefix "sacar/" {
  policy = "write"
}

key_prefix "sacar/_nodes/" {
  policy = "read"
}

key_prefix "sacar/_controller/" {
  policy = "read"
}
