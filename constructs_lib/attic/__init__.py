"""The Attic binary cache: server config, workloads, signing key.

Modules here that hold no construct (``humantime``, ``server_config``) import no jsii, so the
config loader can use them before the jsii runtime starts.
"""
