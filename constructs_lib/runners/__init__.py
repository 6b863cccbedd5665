"""GitLab runner fleet: managers per runner type, job-pod policy, cleanup, Attic wiring."""
