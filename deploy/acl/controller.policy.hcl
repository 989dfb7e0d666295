# Consul ACL policy for the Sacar controller (every replica uses the same token). A
# template: render it with the Consul node names the controller may run on and the apps
# it serves,
#
#   deploy/acl/render-policy.sh controller -n infra-1 -n infra-2 shop blog > controller.hcl
#   consul acl policy create -name sacar-controller -rules @controller.hcl
#   consul acl token create -description "sacar controller" -policy-name sacar-controller
#
# It reads everything under sacar/ and writes only what the controller owns: release
# specs and GitHub bookkeeping, the deploy target (the Deploy button, auto-deploy),
# and its leader lock. Not the operators' config, lock and pin; not the nodes'
# registrations and status; not the nodes' locks. The most specific rule wins in
# Consul, but "any app's releases/" cannot be written as one prefix, so the grants are
# per app: re-render when an app is added.

# Everything under sacar/, to read and to list (key-list policy).
key_prefix "sacar/" {
  policy = "list"
}

# The leader lock sacar/_controller/leader.
key_prefix "sacar/_controller/" {
  policy = "write"
}

# per node: begin
# The leader lock's session, created on the agent the replica talks to: only on the
# nodes the controller runs on, so the token cannot touch the nodes' sessions.
session "<node>" {
  policy = "write"
}
# per node: end

# per app: begin
key_prefix "sacar/<app>/releases/" {
  policy = "write"
}

key_prefix "sacar/<app>/github/" {
  policy = "write"
}

key "sacar/<app>/deploy" {
  policy = "write"
}
# per app: end
