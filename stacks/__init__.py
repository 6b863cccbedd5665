"""The compositions: one stack class per stack kind, built per environment from the config model,
the app that assembles them in apply order, providers and the GitLab state backend."""

from stacks import jsii_env, jsii_speed

# Before anything can import cdktf: jsii picks its Node.js when it first starts.
jsii_env.prepare()
# Before anything imports a provider: only the resource modules a stack uses get built.
jsii_speed.install()
