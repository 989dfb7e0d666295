# Consul ACL policy for the reconciler on ONE node. A template: render it with
#
#   deploy/acl/render-policy.sh reconciler -n web-1 shop blog > web-1.hcl
#   consul acl policy create -name sacar-reconciler-web-1 -rules @web-1.hcl
#   consul acl token create -description "sacar reconciler web-1" -policy-name sacar-reconciler-web-1
#
# <node> is the node's name (SACAR_NODE, which must be its Consul agent's node name:
# the reconciler creates its sessions on that node). The "per app" block is repeated
# for every app that may run on the node. Consul matches keys by prefix only, and the
# status keys sit under each app (sacar/<app>/status/<node>), so "this node's keys" has
# to be spelled out per app: re-render and update the policy when an app is added.

# Desired state, other nodes' registrations and status (run-once pre-deploy, rollout
# order). "list", not "read": with acl.enable_key_list_policy the reconciler's
# recursive reads of the tree need it, and list grants read.
key_prefix "sacar/" {
  policy = "list"
}

# The node's registration, held by its session. An exact key, not a prefix, so that
# no other node's key matches (a prefix for web-1 would cover web-10).
key "sacar/_nodes/<node>" {
  policy = "write"
}

# Sessions on this node only (registration, deploy slot, pre-deploy lock): Sacar
# creates them with Node set to SACAR_NODE, so this rule holds behind a shared agent.
session "<node>" {
  policy = "write"
}

# per app: begin
# Observed state of the app on this node.
key "sacar/<app>/status/<node>" {
  policy = "write"
}

# The app's deploy semaphore and run-once pre-deploy lock, shared by all of its nodes.
key_prefix "sacar/<app>/locks/" {
  policy = "write"
}
# per app: end
