//! The commented starter file `vger config` writes.

/// A starter `vger.yaml`: one local repository, one source, and commented
/// examples of every section. It parses as is, with no variables set.
pub fn starter_config() -> String {
    STARTER.to_owned()
}

const STARTER: &str = r#"# vger.yaml: what to back up, and where.
# Values may use ${VAR} or ${VAR:-default} from the environment ($$ is a literal $).
# Quote a value whose variable may hold YAML-special characters: "${VAR}".

repositories:
  - label: local
    url: /var/backups/vger-repo
    # Other backends (each may override encryption, compression, retention,
    # limits, hooks, schedule and check):
    # - label: s3
    #   url: s3://s3.eu-central-1.amazonaws.com/my-bucket/vger
    #   region: eu-central-1
    #   access_key_id: ${AWS_ACCESS_KEY_ID}
    #   secret_access_key: ${AWS_SECRET_ACCESS_KEY}
    #   s3_addressing: path          # or virtual
    #   s3_soft_delete: false
    #   retry: { max_retries: 5, retry_delay_ms: 1000, retry_max_delay_ms: 60000 }
    # - label: nas
    #   url: sftp://backup@nas.example.org:22/srv/vger
    #   sftp_key: ~/.ssh/id_ed25519
    #   sftp_known_hosts: ~/.ssh/known_hosts
    # - label: server
    #   url: https://vger.example.org/me
    #   access_token: ${VGER_REST_TOKEN}
    #   # http:// and s3+http:// URLs also need: allow_insecure_http: true

# The simple form: a list of paths backed up together as one source.
sources:
  - ~/Documents
# The rich form: one map per source.
# sources:
#   - label: home
#     paths: [~/Documents, ~/Pictures]   # or path: ~/Documents
#     exclude: ["*.tmp", ".cache/"]
#     exclude_if_present: [.nobackup]
#     one_file_system: true
#     git_ignore: true
#     change_detection: strict           # or mtime-size
#     repos: [local]                     # default: every repository
#     retention: { keep_daily: 14 }
#     hooks:
#       before_backup: "echo starting"
#     command_dumps:
#       - name: postgres.sql
#         command: pg_dumpall

# Gitignore-style patterns excluded from every source.
exclude_patterns:
  - "*.swp"
# exclude_if_present: [.nobackup]

encryption:
  mode: auto   # auto, aes256gcm, chacha20poly1305 or none
  # The passphrase comes from VGER_PASSPHRASE, a prompt, or:
  # passcommand: "pass show vger"

compression: lz4   # lz4, none, zstd or zstd:N (1-22)

# chunker: { min_size: 512KiB, avg_size: 2MiB, max_size: 8MiB }
# cache_dir: ~/.cache/vger
# xattrs: { enabled: true }

# retention:
#   keep_last: 5
#   keep_hourly: 24
#   keep_daily: 7
#   keep_weekly: 4
#   keep_monthly: 12
#   keep_yearly: 3
#   keep_within: 2d          # h, d, w, m (months) or y

# limits:
#   threads: 2
#   nice: 10
#   io_read_mib_per_sec: 100
#   upload_mib_per_sec: 20
#   download_mib_per_sec: 50
#   connections: 4

# hooks:             # before, after, failed, finally; or per command:
#   before_backup: "systemctl stop myapp"   # _backup, _prune, _check, _compact
#   finally_backup: ["systemctl start myapp"]

# check:
#   max_percent: 10
#   full_every: 30d

# schedule:
#   enabled: true
#   every: 6h                # or cron: "0 3 * * *"
#   on_startup: false
#   jitter_seconds: 300

# notify:
#   - url: https://hc-ping.com/${HEALTHCHECK_ID}
#     events: [failure]      # start, success, failure
#     method: POST
#     body: "vger backup finished"

# env_file: .env             # KEY=VALUE lines, used by ${VAR}
"#;
