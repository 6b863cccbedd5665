"""TOML keys that gitlab-runner accepts in ``config.toml``, for checking rendered runner config.

Target: Helm chart gitlab-runner 0.92.0 / runner v19.3.0, Kubernetes executor.

Where the sets come from (read through the public-code index, GitHub mirror
``gitlabhq/gitlab-runner`` of gitlab.com/gitlab-org/gitlab-runner; the index gives no commit for
the newest file versions, so each is described by what it contains):

* ``common/config.go``: the newest version the index holds (151,690 chars). It has
  ``retry_limits``, ``allowed_users``/``allowed_groups`` (runner 18.4+) and
  ``step_runner_image``, but not the 18.10+/19.x keys below, so it is an 18.x (18.4 to 18.9)
  snapshot. Every ``*_CONFIG_GO`` set is copied from its ``toml:"..."`` struct tags.
* ``helpers/featureflags/flags.go``: newest stored version (names and ``DefaultValue``).
* 19.x additions come from the runner's own docs in the same repo, which are newer than that
  ``config.go``: ``docs-locale/fr-fr/executors/kubernetes/_index.md`` (commit
  077a13dad947b388b5c98a39932f4441f75e41a9) and
  ``docs-locale/fr-fr/configuration/advanced-configuration.md`` (commit
  877127dab6c8bdb6d7629756d55f4306d5dc7555). They cover features up to 19.2 (``prepare_timeout``
  19.0, ``get_sources_timeout`` 19.1, ``[runners.experimental.boot_verify]`` 19.2). The extra
  feature flags come from the ``FF_*`` variables a runner ``19.2.0~pre`` exported into a job.
  Keys named only in docs are kept in separate ``*_19X_DOCS`` sets.

No v19.3.0 tag was available, so keys added in 19.3.0 itself may be missing. Treat a key that is
not in these sets as suspect, not as certainly wrong. ``gitlab-runner lint`` (19.3.0) is the
authoritative check.
"""

from __future__ import annotations

from typing import Final

# --------------------------------------------------------------------------------------------
# Global section (type Config).
# --------------------------------------------------------------------------------------------
_GLOBAL_KEYS_CONFIG_GO: Final = frozenset(
    {
        "listen_address",
        "session_server",
        "labels",
        "concurrent",
        "check_interval",
        "log_level",
        "log_format",
        "user",
        "runners",
        "sentry_dsn",
        "connection_max_age",
        "experimental",
        "shutdown_timeout",
    }
)
# Global [machine] section (docker+machine shutdown_drain), added in 18.10 (advanced-configuration).
_GLOBAL_KEYS_19X_DOCS: Final = frozenset({"machine"})
GLOBAL_KEYS: Final[frozenset[str]] = _GLOBAL_KEYS_CONFIG_GO | _GLOBAL_KEYS_19X_DOCS

SESSION_SERVER_KEYS: Final[frozenset[str]] = frozenset(
    {"listen_address", "advertise_address", "session_timeout"}
)

# --------------------------------------------------------------------------------------------
# [[runners]]: RunnerConfig + RunnerCredentials + RunnerSettings (embedded structs).
# --------------------------------------------------------------------------------------------
_RUNNER_CONFIG_KEYS: Final = frozenset(
    {
        "name",
        "limit",
        "output_limit",
        "request_concurrency",
        "strict_check_interval",
        "unhealthy_requests_limit",
        "unhealthy_interval",
        "job_status_final_update_retry_limit",
    }
)
_RUNNER_CREDENTIALS_KEYS: Final = frozenset(
    {
        "url",
        "id",
        "token",
        "token_obtained_at",
        "token_expires_at",
        "tls-ca-file",
        "tls-cert-file",
        "tls-key-file",
    }
)
_RUNNER_SETTINGS_KEYS: Final = frozenset(
    {
        "labels",
        "executor",
        "builds_dir",
        "cache_dir",
        "clone_url",
        "environment",
        "proxy_exec",
        "pre_get_sources_script",
        "post_get_sources_script",
        "pre_build_script",
        "post_build_script",
        "debug_trace_disabled",
        "safe_directory_checkout",
        "clean_git_config",
        "shell",
        "custom_build_dir",
        "referees",
        "cache",
        "feature_flags",
        "monitoring",
        "use_slot_cgroups",
        "slot_cgroup_template",
        "instance",
        "ssh",
        "docker",
        "parallels",
        "virtualbox",
        "machine",
        "kubernetes",
        "custom",
        "autoscaler",
        "step_runner_image",
    }
)
# prepare_timeout (19.0), get_sources_timeout (19.1), [runners.experimental.boot_verify] (19.2).
_RUNNER_KEYS_19X_DOCS: Final = frozenset({"prepare_timeout", "get_sources_timeout", "experimental"})
RUNNER_KEYS: Final[frozenset[str]] = (
    _RUNNER_CONFIG_KEYS | _RUNNER_CREDENTIALS_KEYS | _RUNNER_SETTINGS_KEYS | _RUNNER_KEYS_19X_DOCS
)
# Note: pre_clone_script/post_clone_script are NOT struct fields any more (not in config.go).

# [runners.experimental.boot_verify] (docs only, experimental, 19.2).
BOOT_VERIFY_KEYS: Final[frozenset[str]] = frozenset(
    {"enabled", "timeout", "acquire_min_backoff", "acquire_max_backoff"}
)

# --------------------------------------------------------------------------------------------
# [runners.cache] and [runners.cache.s3] (CamelCase keys!).
# --------------------------------------------------------------------------------------------
CACHE_KEYS: Final[frozenset[str]] = frozenset(
    {"Type", "Path", "Shared", "MaxUploadedArchiveSize", "s3", "gcs", "azure"}
)
_CACHE_S3_KEYS_CONFIG_GO: Final = frozenset(
    {
        "ServerAddress",
        "AccessKey",
        "SecretKey",
        "SessionToken",
        "BucketName",
        "BucketLocation",
        "Insecure",
        "AuthenticationType",
        "ServerSideEncryption",
        "ServerSideEncryptionKeyID",
        "DualStack",
        "PathStyle",
        "Accelerate",
        "RoleARN",
        "UploadRoleARN",  # documented as deprecated in favour of RoleARN
    }
)
_CACHE_S3_KEYS_19X_DOCS: Final = frozenset({"AssumeRoleMaxConcurrency"})
CACHE_S3_KEYS: Final[frozenset[str]] = _CACHE_S3_KEYS_CONFIG_GO | _CACHE_S3_KEYS_19X_DOCS

# --------------------------------------------------------------------------------------------
# [runners.kubernetes] (type KubernetesConfig).
# --------------------------------------------------------------------------------------------
_RESOURCE_KEYS: Final = frozenset(
    f"{prefix}{resource}_{kind}{suffix}"
    for prefix in ("", "service_", "helper_")
    for resource in ("cpu", "memory", "ephemeral_storage")
    for kind in ("limit", "request")
    for suffix in ("", "_overwrite_max_allowed")
)
_KUBERNETES_KEYS_CONFIG_GO: Final = _RESOURCE_KEYS | frozenset(
    {
        "host",
        "context",
        "cert_file",
        "key_file",
        "ca_file",
        "bearer_token_overwrite_allowed",
        "bearer_token",
        "image",
        "namespace",
        "namespace_overwrite_allowed",
        "namespace_per_job",
        "privileged",
        "runtime_class_name",
        "allow_privilege_escalation",
        "allowed_images",
        "allowed_pull_policies",
        "allowed_services",
        "allowed_users",
        "allowed_groups",
        "pull_policy",
        "node_selector",
        "node_selector_overwrite_allowed",
        "node_tolerations",
        "node_tolerations_overwrite_allowed",
        "affinity",
        "image_pull_secrets",
        "use_service_account_image_pull_secrets",
        "helper_image",
        "helper_image_flavor",
        "helper_image_autoset_arch_and_os",
        "pod_termination_grace_period_seconds",
        "cleanup_grace_period_seconds",
        "cleanup_resources_timeout",
        "poll_interval",
        "poll_timeout",
        "resource_availability_check_max_attempts",
        "retry_limit",
        "retry_backoff_max",
        "retry_limits",
        "pod_labels",
        "pod_labels_overwrite_allowed",
        "scheduler_name",
        "service_account",
        "service_account_overwrite_allowed",
        "automount_service_account_token",
        "pod_annotations",
        "pod_annotations_overwrite_allowed",
        "pod_security_context",
        "init_permissions_container_security_context",
        "build_container_security_context",
        "helper_container_security_context",
        "service_container_security_context",
        "volumes",
        "host_aliases",
        "services",
        "cap_add",
        "cap_drop",
        "dns_policy",
        "dns_config",
        "container_lifecycle",
        "priority_class_name",
        "pod_spec",
        "logs_base_dir",
        "scripts_base_dir",
        "print_pod_warning_events",
    }
)
# 19.x docs (executors/kubernetes/_index.md): pod-level resources (K8s 1.32+ feature),
# pod_disruption_budget (18.10), [runners.kubernetes.autoscaler] pause pods (18.10).
# The legacy `terminationGracePeriodSeconds` is still in the docs table but is no longer a
# KubernetesConfig field in config.go, so it is deliberately left out.
_KUBERNETES_KEYS_19X_DOCS: Final = frozenset(
    f"pod_{resource}_{kind}{suffix}"
    for resource in ("cpu", "memory")
    for kind in ("limit", "request")
    for suffix in ("", "_overwrite_max_allowed")
) | frozenset({"pod_disruption_budget", "autoscaler"})
KUBERNETES_KEYS: Final[frozenset[str]] = _KUBERNETES_KEYS_CONFIG_GO | _KUBERNETES_KEYS_19X_DOCS

# [runners.kubernetes.autoscaler] and [[runners.kubernetes.autoscaler.policy]] (docs only).
KUBERNETES_AUTOSCALER_KEYS: Final[frozenset[str]] = frozenset(
    {"max_pause_pods", "pause_pod_image", "pause_pod_priority_class_name", "policy"}
)
KUBERNETES_AUTOSCALER_POLICY_KEYS: Final[frozenset[str]] = frozenset(
    {"periods", "timezone", "idle_count", "idle_time", "scale_factor", "scale_factor_limit"}
)

# --------------------------------------------------------------------------------------------
# Security contexts.
# --------------------------------------------------------------------------------------------
# seccomp_profile / app_armor_profile sub-tables (both with `type` and `localhost_profile`)
# exist in pod_security_context and in every *_container_security_context per the 19.x docs.
_SECURITY_PROFILE_TABLES_19X_DOCS: Final = frozenset({"seccomp_profile", "app_armor_profile"})
SECURITY_PROFILE_KEYS: Final[frozenset[str]] = frozenset({"type", "localhost_profile"})

_POD_SECURITY_CONTEXT_KEYS_CONFIG_GO: Final = frozenset(
    {
        "fs_group",
        "run_as_group",
        "run_as_non_root",
        "run_as_user",
        "supplemental_groups",
        "selinux_type",
    }
)
POD_SECURITY_CONTEXT_KEYS: Final[frozenset[str]] = (
    _POD_SECURITY_CONTEXT_KEYS_CONFIG_GO | _SECURITY_PROFILE_TABLES_19X_DOCS
)

_CONTAINER_SECURITY_CONTEXT_KEYS_CONFIG_GO: Final = frozenset(
    {
        "capabilities",
        "privileged",
        "run_as_user",
        "run_as_group",
        "run_as_non_root",
        "read_only_root_filesystem",
        "allow_privilege_escalation",
        "selinux_type",
        "proc_mount",
    }
)
CONTAINER_SECURITY_CONTEXT_KEYS: Final[frozenset[str]] = (
    _CONTAINER_SECURITY_CONTEXT_KEYS_CONFIG_GO | _SECURITY_PROFILE_TABLES_19X_DOCS
)
CAPABILITIES_KEYS: Final[frozenset[str]] = frozenset({"add", "drop"})

# --------------------------------------------------------------------------------------------
# [[runners.kubernetes.volumes.<kind>]]
# --------------------------------------------------------------------------------------------
_VOLUME_KEYS_CONFIG_GO: Final[dict[str, frozenset[str]]] = {
    "host_path": frozenset(
        {"name", "mount_path", "sub_path", "read_only", "host_path", "mount_propagation"}
    ),
    "pvc": frozenset({"name", "mount_path", "sub_path", "read_only", "mount_propagation"}),
    # secret/config_map: no `optional` key exists; `items` maps key -> relative path and, when
    # set, mounts only those keys (a missing key fails pod creation).
    "config_map": frozenset({"name", "mount_path", "sub_path", "read_only", "items"}),
    "secret": frozenset({"name", "mount_path", "sub_path", "read_only", "items"}),
    "empty_dir": frozenset({"name", "mount_path", "sub_path", "medium", "size_limit"}),
    "csi": frozenset(
        {"name", "mount_path", "sub_path", "driver", "fs_type", "read_only", "volume_attributes"}
    ),
}
# 19.x docs: empty_dir gained mount_propagation; an `nfs` kind appears only in doc examples
# (install/kubernetes_helm_chart_configuration.md and the executor page). Its key set is
# taken from those examples and may be incomplete (e.g. sub_path is unconfirmed).
_VOLUME_KEYS_19X_DOCS: Final[dict[str, frozenset[str]]] = {
    "empty_dir": frozenset({"mount_propagation"}),
    "nfs": frozenset({"name", "mount_path", "read_only", "server", "path"}),
}
VOLUME_KEYS: Final[dict[str, frozenset[str]]] = {
    kind: _VOLUME_KEYS_CONFIG_GO.get(kind, frozenset())
    | _VOLUME_KEYS_19X_DOCS.get(kind, frozenset())
    for kind in (*_VOLUME_KEYS_CONFIG_GO, *_VOLUME_KEYS_19X_DOCS)
}
VOLUME_KINDS: Final[frozenset[str]] = frozenset(VOLUME_KEYS)

# --------------------------------------------------------------------------------------------
# Other [runners.kubernetes] sub-tables.
# --------------------------------------------------------------------------------------------
# [[runners.kubernetes.services]] (type Service). There is no per-service `privileged`; use
# service_container_security_context.privileged (falls back to runners.kubernetes.privileged).
SERVICE_KEYS: Final[frozenset[str]] = frozenset(
    {"name", "alias", "command", "entrypoint", "environment"}
)
POD_SPEC_KEYS: Final[frozenset[str]] = frozenset({"name", "patch_path", "patch", "patch_type"})
POD_SPEC_PATCH_TYPES: Final[frozenset[str]] = frozenset({"json", "merge", "strategic"})
DNS_CONFIG_KEYS: Final[frozenset[str]] = frozenset({"nameservers", "options", "searches"})
DNS_CONFIG_OPTION_KEYS: Final[frozenset[str]] = frozenset({"name", "value"})
HOST_ALIAS_KEYS: Final[frozenset[str]] = frozenset({"ip", "hostnames"})
AFFINITY_KEYS: Final[frozenset[str]] = frozenset(
    {"node_affinity", "pod_affinity", "pod_anti_affinity"}
)
CONTAINER_LIFECYCLE_KEYS: Final[frozenset[str]] = frozenset({"post_start", "pre_stop"})
DNS_POLICIES: Final[frozenset[str]] = frozenset(
    {"none", "default", "cluster-first", "cluster-first-with-host-net"}
)
PULL_POLICIES: Final[frozenset[str]] = frozenset({"always", "never", "if-not-present"})

# --------------------------------------------------------------------------------------------
# Feature flags ([runners.feature_flags] keys, or FF_* in `environment`).
# --------------------------------------------------------------------------------------------
_FEATURE_FLAG_DEFAULTS_FLAGS_GO: Final[dict[str, bool]] = {
    "FF_TEST_FEATURE": False,  # deprecated test-only flag
    "FF_NETWORK_PER_BUILD": False,
    "FF_USE_LEGACY_KUBERNETES_EXECUTION_STRATEGY": False,
    "FF_USE_DIRECT_DOWNLOAD": True,
    "FF_SKIP_NOOP_BUILD_STAGES": True,
    "FF_USE_FASTZIP": False,
    "FF_DISABLE_UMASK_FOR_DOCKER_EXECUTOR": False,
    "FF_ENABLE_BASH_EXIT_CODE_CHECK": False,
    "FF_USE_WINDOWS_LEGACY_PROCESS_STRATEGY": False,
    "FF_USE_NEW_BASH_EVAL_STRATEGY": False,
    "FF_USE_POWERSHELL_PATH_RESOLVER": False,
    "FF_USE_DYNAMIC_TRACE_FORCE_SEND_INTERVAL": False,
    "FF_SCRIPT_SECTIONS": False,
    "FF_ENABLE_JOB_CLEANUP": False,
    "FF_KUBERNETES_HONOR_ENTRYPOINT": False,
    "FF_POSIXLY_CORRECT_ESCAPES": False,
    "FF_RESOLVE_FULL_TLS_CHAIN": False,
    "FF_DISABLE_POWERSHELL_STDIN": False,
    "FF_USE_POD_ACTIVE_DEADLINE_SECONDS": True,
    "FF_USE_ADVANCED_POD_SPEC_CONFIGURATION": False,
    "FF_SET_PERMISSIONS_BEFORE_CLEANUP": True,
    "FF_SECRET_RESOLVING_FAILS_IF_MISSING": True,
    "FF_PRINT_POD_EVENTS": False,
    "FF_USE_GIT_BUNDLE_URIS": True,
    "FF_USE_GIT_NATIVE_CLONE": False,
    "FF_USE_DUMB_INIT_WITH_KUBERNETES_EXECUTOR": False,
    "FF_USE_INIT_WITH_DOCKER_EXECUTOR": False,
    "FF_LOG_IMAGES_CONFIGURED_FOR_JOB": False,
    "FF_USE_DOCKER_AUTOSCALER_DIAL_STDIO": True,
    "FF_CLEAN_UP_FAILED_CACHE_EXTRACT": False,
    "FF_USE_WINDOWS_JOB_OBJECT": False,
    "FF_TIMESTAMPS": True,
    "FF_DISABLE_AUTOMATIC_TOKEN_ROTATION": False,
    "FF_USE_LEGACY_GCS_CACHE_ADAPTER": False,
    "FF_DISABLE_UMASK_FOR_KUBERNETES_EXECUTOR": False,
    "FF_USE_LEGACY_S3_CACHE_ADAPTER": False,
    "FF_GIT_URLS_WITHOUT_TOKENS": False,
    "FF_WAIT_FOR_POD_TO_BE_REACHABLE": False,
    "FF_MASK_ALL_DEFAULT_TOKENS": True,
    "FF_EXPORT_HIGH_CARDINALITY_METRICS": False,
    "FF_USE_FLEETING_ACQUIRE_HEARTBEATS": False,
    "FF_USE_EXPONENTIAL_BACKOFF_STAGE_RETRY": True,
    "FF_USE_ADAPTIVE_REQUEST_CONCURRENCY": True,
    "FF_USE_GITALY_CORRELATION_ID": True,
    "FF_USE_GIT_PROACTIVE_AUTH": False,
    "FF_HASH_CACHE_KEYS": False,
    "FF_ENABLE_JOB_INPUTS_INTERPOLATION": True,
    "FF_USE_JOB_ROUTER": False,
    "FF_SCRIPT_TO_STEP_MIGRATION": False,
}
# Defaults from the 19.x feature-flags doc table (docs-locale/fr-fr/configuration/feature-flags.md).
_FEATURE_FLAG_DEFAULTS_19X_DOCS: Final[dict[str, bool]] = {
    "FF_USE_PARALLEL_CACHE_TRANSFER": False,
    "FF_USE_PARALLEL_ARTIFACT_TRANSFER": False,
    "FF_CONCRETE": False,
    "FF_SUSPENDABLE_ENVIRONMENTS": False,
}
FEATURE_FLAG_DEFAULTS: Final[dict[str, bool]] = {
    **_FEATURE_FLAG_DEFAULTS_FLAGS_GO,
    **_FEATURE_FLAG_DEFAULTS_19X_DOCS,
}
# Names a 19.2.0~pre runner exported as job variables, whose default is not documented in any
# source read here (GitLab.com SaaS runners showed them as 'false').
_FEATURE_FLAGS_NO_DEFAULT_KNOWN: Final = frozenset(
    {"FF_USE_LEGACY_BASH_EVAL", "FF_USE_NATIVE_CONTAINER_STOP"}
)
# May be incomplete for 19.3.0: flags added after 19.2.0~pre are not covered.
FEATURE_FLAGS: Final[frozenset[str]] = (
    frozenset(FEATURE_FLAG_DEFAULTS) | _FEATURE_FLAGS_NO_DEFAULT_KNOWN
)
