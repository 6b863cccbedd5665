"""The runner dashboard: its workload, its read-only access to the cluster, and the GitLab OAuth
application users sign in with."""
