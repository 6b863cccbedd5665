"""atticd's signing key: made in the cluster by default, so it is never in Terraform state; the
old Terraform-made key is forgotten, not destroyed, when a state switches; and nothing that
needs the key starts before the Job has stored it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from config_model.loader import EXAMPLE_CONFIG, ResolvedEnvironment, load_config
from constructs_lib.attic.signing_key import ENV_NAME
from tests.conftest import DATA
from tests.support.graph import reachable
from tests.support.synth_output import SynthOutput, dependencies, resources, strings_in

SECRET = "attic-token-signing"


def _environments() -> dict[str, ResolvedEnvironment]:
    return {
        name: env
        for path in (EXAMPLE_CONFIG, DATA / "variants.yaml")
        for name, env in load_config(path).environments.items()
    }


def _attic_stacks(synths: list[SynthOutput], source: str) -> list[tuple[str, dict[str, Any]]]:
    """The attic stacks whose environment uses ``source``: every one but the variants'
    ``external`` is in_cluster (the default), so the checks below never pass vacuously."""
    envs = _environments()
    found = [
        (stack, doc)
        for synth in synths
        for stack, doc in synth.stacks()
        if stack.startswith("attic-")
        and envs[stack.split("-", 1)[1]].config.attic.signing_key.source == source
    ]
    assert len(found) >= (6 if source == "in_cluster" else 1), (source, len(found))
    return found


def _key_job(doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (f"kubernetes_job_v1.{name}", job)
        for name, job in resources(doc, "kubernetes_job_v1").items()
        if any("openssl genrsa" in text for text in strings_in(job))
    ]
    return found


def _terraform_key_addresses(doc: dict[str, Any]) -> list[str]:
    """Where the terraform source keeps the key: the tls_private_key and the Secret."""
    keys = [f"tls_private_key.{name}" for name in resources(doc, "tls_private_key")]
    secrets = [
        f"kubernetes_secret_v1.{name}"
        for name, item in resources(doc, "kubernetes_secret_v1").items()
        if item["metadata"]["name"] == SECRET
    ]
    return sorted(keys + secrets)


def test_the_key_is_never_in_terraform_state_by_default(all_synths: list[SynthOutput]):
    for stack, doc in _attic_stacks(all_synths, "in_cluster"):
        assert _terraform_key_addresses(doc) == [], stack
        _, job = _key_job(doc)
        pod = job["spec"]["template"]["spec"]
        (generate,) = pod["init_container"]
        assert "openssl genrsa -traditional" in generate["command"][-1]
        assert " 4096" in generate["command"][-1]
        (store,) = pod["container"]
        command = store["command"]
        for flag, value in (("--secret", SECRET), ("--key", ENV_NAME)):
            assert command[command.index(flag) + 1] == value, stack


def _readers(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every env entry named like atticd's key variable, in any pod template."""

    def walk(value: Any) -> Iterator[dict[str, Any]]:
        if isinstance(value, dict):
            if value.get("name") == ENV_NAME and "value_from" in value:
                yield value
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    yield from walk(doc.get("resource", {}))


def test_every_pod_reads_the_key_from_the_secret_the_job_writes(all_synths: list[SynthOutput]):
    for stack, doc in _attic_stacks(all_synths, "in_cluster"):
        readers = list(_readers(doc))
        assert len(readers) >= 3, stack  # migrations, API, GC, token minting
        for entry in readers:
            ref = entry["value_from"]["secret_key_ref"]
            assert (ref["name"], ref["key"]) == (SECRET, ENV_NAME), stack


def test_switching_forgets_the_terraform_key_instead_of_destroying_it(
    all_synths: list[SynthOutput],
):
    """A state made with the terraform source holds the key and its Secret; the in_cluster
    stacks name exactly those addresses in `removed` blocks that do not destroy, so OpenTofu
    forgets them and the Secret, with the key that signed every token, stays for the Job."""
    terraform = [_terraform_key_addresses(doc) for _, doc in _attic_stacks(all_synths, "terraform")]
    assert terraform
    assert all(len(found) == 2 for found in terraform)
    (expected,) = {tuple(found) for found in terraform}  # the same in every stack
    for stack, doc in _attic_stacks(all_synths, "in_cluster"):
        removed = doc.get("removed", [])
        assert sorted(block["from"] for block in removed) == list(expected), stack
        assert all(block["lifecycle"] == {"destroy": False} for block in removed), stack
    for stack, doc in _attic_stacks(all_synths, "terraform"):
        assert "removed" not in doc, stack


def test_nothing_that_needs_the_key_starts_before_the_job_stored_it(
    all_synths: list[SynthOutput],
):
    for stack, doc in _attic_stacks(all_synths, "in_cluster"):
        job_address, job = _key_job(doc)
        assert job["wait_for_completion"] is True
        graph = dependencies(doc)
        users = [
            f"{rtype}.{name}"
            for rtype in ("kubernetes_job_v1", "kubernetes_deployment_v1", "kubernetes_cron_job_v1")
            for name, item in resources(doc, rtype).items()
            if any(True for _ in _readers({"resource": {rtype: {name: item}}}))
        ]
        assert users, stack
        for user in users:
            assert job_address in reachable(graph, user), (stack, user)


def test_the_job_may_read_its_secret_and_create_it_but_change_nothing(
    all_synths: list[SynthOutput],
):
    for stack, doc in _attic_stacks(all_synths, "in_cluster"):
        _, job = _key_job(doc)
        account = job["spec"]["template"]["spec"]["service_account_name"]
        roles = [
            role
            for role in resources(doc, "kubernetes_role_v1").values()
            if role["metadata"]["name"] == "attic-signing-key"
        ]
        (role,) = roles
        verbs = {
            (verb, tuple(rule.get("resource_names") or ()))
            for rule in role["rule"]
            for verb in rule["verbs"]
        }
        assert verbs == {("get", (SECRET,)), ("create", ())}, stack
        policies = [
            item["manifest"]
            for item in resources(doc, "kubernetes_manifest").values()
            if item["manifest"]["kind"] == "ValidatingAdmissionPolicy"
            and "attic-signing-key" in item["manifest"]["metadata"]["name"]
        ]
        (policy,) = policies
        assert policy["spec"]["validations"][0]["expression"].endswith(f"in ['attic/{SECRET}']")
        assert policy["spec"]["matchConditions"][0]["expression"].endswith(
            ":attic:attic-signing-key'"
        )
        assert account.startswith("${kubernetes_service_account_v1."), stack
