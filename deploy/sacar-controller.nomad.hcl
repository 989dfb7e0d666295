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
#     github_webhook_secret=... sacar_notify_token=... consul_http_token=...
#
# Secrets reach the process only as files under the task's secrets/ directory, never
# in the job's env block (which anyone with read-job can see).

job "sacar-controller" {
  type = "service"

  # Sacar is installed on the clients at /usr/local/lib/sacar (`npm ci` in a clone of
  # the release tag); the exec driver's chroot includes /usr. Bump this to roll out a
  # new install.
  meta {
    sacar_version = "0.1.0"
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

      config {
        command = "/usr/local/lib/sacar/node_modules/.bin/node"
        args    = ["/usr/local/lib/sacar/bin/sacar.ts", "controller"]
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
