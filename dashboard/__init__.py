"""The runner dashboard: a web app over GitLab, Kubernetes and Prometheus (README "Runner
dashboard"). It reads the config model and never loads cdktf."""
