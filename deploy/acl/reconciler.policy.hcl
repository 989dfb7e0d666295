# Consul ACL policy for the reconciler on ONE node. It is a template: render it per
# node with deploy/acl/render-reconciler-policy.sh, which replaces <node> with the
# node's name (SACAR_NODE, which is also its Consul agent's node name) and repeats the
# "per app" block for every app that may run on the node, with <app> replaced:
#
#   deploy/acl/render-reconciler-policy.sh web-1 shop blog > web-1.hcl
#   consul acl policy create -name sacar-reconciler-web-1 -rules @web-1.hcl
#   consul acl token create -description "sacar reconciler web-1" -policy-name sacar-reconciler-web-1
#
# Consul matches keys by prefix only, and the status keys sit under each app
# (sacar/<app>/status/<node>), so "this node's keys" has to be spelled out per app.
# Re-render and update the policy when an app is added. With SACAR_PREFIX set, the
# script puts that prefix in place of sacar/.

# Desired state, other nodes' registrations and status (for run-once pre-deploy and
# rollout order): read everything under sacar/.
key_prefix "sacar/" {
  policy = "read"
}

# The node's registration, held by its session; an exact key, not a prefix, so that
# no other node's key matches (a prefix for web-1 would cover web-10).
key "sacar/_nodes/<node>" {
  policy = "write"
}

# Sessions attached to this node only: the registration's and the locks'.
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
