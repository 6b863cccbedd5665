"""The runner dashboard: its workload, its read-only access to the cluster, and the GitLab OAuth
application users sign in with.

To deploy it from your own cdktf app: :mod:`~constructs_lib.dashboard.runner_dashboard` runs the
app (image, settings, ``organization.yaml``, secrets), :mod:`~constructs_lib.dashboard.read_access`
lets it read the namespaces it watches, :mod:`~constructs_lib.dashboard.oauth_application`
registers it with GitLab (the ``gitlab`` extra; or register it yourself and pass the secret),
:class:`~constructs_lib.kubernetes.web_ingress.WebIngress` with ``traffic="events"`` publishes
it, and :mod:`~constructs_lib.monitoring.dashboard_alerts` alerts on it.
"""

__all__ = ["oauth_application", "read_access", "runner_dashboard"]
