"""The attic-iac application: configuration, stacks per environment, command-line tool."""
