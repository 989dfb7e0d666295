# Sacar controller: receives GitHub webhooks and CI notifications, writes desired state
# to Consul KV and mirrors observed state back to GitHub. Two allocations for
# availability; only the one holding sacar/_controller/leader talks to GitHub.
#
# Before `nomad job run deploy/sacar-controller.nomad.hcl`, store the secrets (see
# docs/operations.md):
#
#   nomad var put nomad/jobs/sacar-controller \
#     github_app_id=123456 \
#     github_app_private_key=@github-app.pem \
#     github_webhook_secret=... sacar_notify_token=... sacar_read_token=... \
#     consul_http_token=...
#
# Secrets reach the process only as files under the task's secrets/ directory, never
# in the job's env block (which anyone with read-job can see).

# Sacar itself comes as the tarball `make dist` builds (docs/operations.md, "Installing
# Sacar"): upload dist/sacar-<version>-linux-x64.tar.gz where the clients can fetch it
# and run the job with its address and checksum, e.g.
#
#   nomad job run -var sacar_url=https://storage.googleapis.com/acme-ops/sacar/sacar-0.1.0-linux-x64.tar.gz \
#     -var sacar_sha256=$(cut -d' ' -f1 dist/sacar-0.1.0-linux-x64.tar.gz.sha256) deploy/sacar-controller.nomad.hcl
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

job "sacar-controller" {
  type = "service"

  meta {
    sacar_version = var.sacar_version
  }

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "15s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "controller" {
    count = 2

    # never both replicas on one machine
    constraint {
      operator = "distinct_hosts"
      value    = "true"
    }

    network {
      port "http" {}
    }

    service {
      name     = "sacar-controller"
      port     = "http"
      provider = "consul"
      tags     = ["sacar", "http"]

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "2s"
      }

      check {
        name     = "ready"
        type     = "http"
        path     = "/readyz"
        interval = "10s"
        timeout  = "3s"
      }
    }

    restart {
      attempts = 5
      interval = "5m"
      delay    = "10s"
      mode     = "delay"
    }

    task "controller" {
      driver = "exec"

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
        args    = ["controller"]
      }

      # the controller finishes in-flight requests and gives up the leader lock
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      env {
        SACAR_LISTEN     = "${NOMAD_ADDR_http}"
        SACAR_PUBLIC_URL = "https://sacar.example.com"
        CONSUL_HTTP_ADDR = "http://127.0.0.1:8500"
        SACAR_LOG_FORMAT = "json"

        GITHUB_APP_PRIVATE_KEY_FILE = "${NOMAD_SECRETS_DIR}/github-app.pem"
        GITHUB_WEBHOOK_SECRET_FILE  = "${NOMAD_SECRETS_DIR}/github-webhook-secret"
        SACAR_NOTIFY_TOKEN_FILE     = "${NOMAD_SECRETS_DIR}/notify-token"
        SACAR_READ_TOKEN_FILE       = "${NOMAD_SECRETS_DIR}/read-token"
        CONSUL_HTTP_TOKEN_FILE      = "${NOMAD_SECRETS_DIR}/consul-token"
      }

      # Not a secret, but kept with the others so one `nomad var put` configures GitHub.
      template {
        destination = "${NOMAD_SECRETS_DIR}/github.env"
        env         = true
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/sacar-controller" }}
          GITHUB_APP_ID={{ .github_app_id }}
          {{- end }}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/github-app.pem"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/sacar-controller" }}{{ .github_app_private_key }}{{ end -}}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/github-webhook-secret"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/sacar-controller" }}{{ .github_webhook_secret }}{{ end -}}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/notify-token"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/sacar-controller" }}{{ .sacar_notify_token }}{{ end -}}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/read-token"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/sacar-controller" }}{{ .sacar_read_token }}{{ end -}}
        EOT
      }

      template {
        destination = "${NOMAD_SECRETS_DIR}/consul-token"
        perms       = "0400"
        change_mode = "restart"
        data        = <<-EOT
          {{- with nomadVar "nomad/jobs/sacar-controller" }}{{ .consul_http_token }}{{ end -}}
        EOT
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
