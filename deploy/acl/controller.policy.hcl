# Consul ACL policy for the Sacar controller (every replica uses the same token).
#
#   consul acl policy create -name sacar-controller -rules @deploy/acl/controller.policy.hcl
#   consul acl token create -description "sacar controller" -policy-name sacar-controller
#
# It reads app configs, node registrations and node status, and writes desired state:
# release specs, deploy targets, pins, its GitHub bookkeeping (sacar/<app>/github/) and
# the leader lock sacar/_controller/leader. Consul cannot exclude the reconcilers'
# status keys from a prefix grant; the controller never writes them.
key_prefix "sacar/" {
  policy = "write"
}

# The leader lock's session. Replicas may be placed on any client, so sessions on any
# node; sessions grant nothing on keys by themselves.
session_prefix "" {
  policy = "write"
}
