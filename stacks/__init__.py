"""The attic-iac application: configuration, stacks per environment, command-line tool."""

from stacks import jsii_env

# Before anything can import cdktf: jsii picks its Node.js when it first starts.
jsii_env.prepare()
