"""The command-line tools: the ``attic-iac`` entry point, the OpenTofu driver, health checks and
the CI/CD component generator.

They use the config model, the stacks and the library; nothing imports them. The root imports
nothing, so ``python3 -m iac_tools.tofu`` runs on a bare Python (CI's OpenTofu image).
"""
