# Sacar reconciler: one per machine. It watches Consul KV, downloads and prepares
# releases under /var/lib/sacar, runs the apps' bin/ scripts and reports its own
# status. It opens no port and registers no service: nothing connects to it.
#
# It runs on the host (raw_exec) because the apps' scripts need the host's Python
# interpreters, /var/lib/sacar and the host's service manager. Enable raw_exec on the
# clients, and raise their max_kill_timeout to at least this job's kill_timeout:
#
#   plugin "raw_exec" { config { enabled = true } }
#   client { max_kill_timeout = "10m" }
#
# Each node gets its own Consul token, whose policy lets it write only its own status
# keys (deploy/acl/reconciler.policy.hcl rendered for that node). Store them in one
# variable, one item per node name:
#
#   nomad var put nomad/jobs/sacar-reconciler consul_token_web-1=... consul_token_web-2=...

# Sacar itself comes as the tarball `make dist` builds (docs/operations.md, "Installing
# Sacar"): upload dist/sacar-<version>-linux-x64.tar.gz where the clients can fetch it
# and run the job with its address and checksum, e.g.
#
#   nomad job run -var sacar_url=https://storage.googleapis.com/acme-ops/sacar/sacar-0.1.0-linux-x64.tar.gz \
#     -var sacar_sha256=$(cut -d' ' -f1 dist/sacar-0.1.0-linux-x64.tar.gz.sha256) deploy/sacar-reconciler.nomad.hcl
#
# Nomad checks the sha256 before unpacking; a changed version or checksum rolls the job.

variable "sacar_version" {
  type        = string
  default     = "0.1.0"
  description = "The version in the tarball's name (package.json's version when it was built)."
}

variable "sacar_url" {
  type        = string
  description = "Where the clients download sacar-<version>-linux-x64.tar.gz (https://, gcs::, s3::)."
}

variable "sacar_sha256" {
  type        = string
  description = "The tarball's sha256, from the .sha256 file make dist writes next to it."

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.sacar_sha256))
    error_message = "The sha256 is 64 lowercase hex characters."
  }
}

job "sacar-reconciler" {
  type = "system"

  meta {
    sacar_version = var.sacar_version
  }

  # A system job is updated node by node: one reconciler restarts at a time, so the
  # cluster never loses more than one node's progress reports at once.
  update {
    max_parallel     = 1
    stagger          = "30s"
    health_check     = "task_states"
    min_healthy_time = "20s"
    healthy_deadline = "5m"
  }

  group "reconciler" {
    restart {
      attempts = 10
      interval = "10m"
      delay    = "15s"
      mode     = "delay"
    }

    task "reconciler" {
      driver = "raw_exec"

      # Sacar, its production packages and its own Node 24; Nomad refuses a tarball
      # whose sha256 differs.
      artifact {
        source      = var.sacar_url
        destination = "local"

        options {
          checksum = "sha256:${var.sacar_sha256}"
        }
      }

      config {
        command = "${NOMAD_TASK_DIR}/sacar-${var.sacar_version}-linux-x64/sacar"
        args    = ["reconciler"]
      }

      # SIGTERM: stop taking new work, let running steps reach a safe point, release
      # the node's session. A bin/deploy in progress is allowed to finish, hence a kill
      # timeout above the default deployTimeout (5m).
      kill_signal  = "SIGTERM"
      kill_timeout = "6m"

      env {
        SACAR_NODE             = "${node.unique.name}"
        # The Consul agent's own name for this machine: its sessions are created there.
        SACAR_CONSUL_NODE      = "${attr.unique.consul.name}"
        SACAR_ROOT             = "/var/lib/sacar"
        SACAR_CONCURRENCY      = "2"
        SACAR_PYTHON           = "python3"
        # Run the apps' venv, pip and bin/* as this user instead of root, who then owns
        # each release (docs/operations.md "Who runs the app's scripts"):
        # SACAR_RUN_AS         = "app"
        CONSUL_HTTP_ADDR       = "http://127.0.0.1:8500"
        CONSUL_HTTP_TOKEN_FILE = "${NOMAD_SECRETS_DIR}/consul-token"
        SACAR_LOG_FORMAT       = "json"
        # Google Cloud Storage: Application Default Credentials, i.e. the machine's
        # service account through the metadata server on GCE.
      }

      # This node's token, picked out of the job's variable by node name.
      template {
        destination = "${NOMAD_SECRETS_DIR}/consul-token"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- $item := printf "consul_token_%s" (env "node.unique.name") -}}
          {{- with nomadVar "nomad/jobs/sacar-reconciler" -}}
          {{- range .Tuples }}{{ if eq .K $item }}{{ .V }}{{ end }}{{ end -}}
          {{- end -}}
        EOT
      }

      resources {
        cpu    = 500
        memory = 512
      }
    }
  }
}
