"""The configuration model: every key of ``organization.yaml``, every default, every rule.

One module per concern (organization and environments, platform, monitoring, attic, runners),
their cross-key rules beside them, the loader that reads and resolves the file per environment,
and the JSON Schema export. Imports only the standard library, pydantic, pyyaml and
:mod:`upstream_formats`: never cdktf, jsii or a provider, so config errors come before the jsii
runtime starts and the dashboard can read the model without them. The package root imports
nothing.
"""
