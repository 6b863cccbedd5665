"""stacks.jsii_speed: provider submodules built on first use, stub type hints resolved once.

That the synthesized output is unchanged is the snapshot tests' job (they read the shared synth,
which runs with both on); these check the mechanisms and that a synth pays only for what it uses.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from stacks import jsii_speed
from tests.conftest import REPO, CliRun
from tests.support.synth_output import SynthOutput

ASSEMBLY = re.compile(rb'JSIIAssembly\.load\(\s*"([^"]+)"')
JSII_TYPE = re.compile(rb'jsii_type="([^"]+)"')


def _installed_providers() -> list[Path]:
    kubernetes = importlib.util.find_spec("cdktf_cdktf_provider_kubernetes")
    assert kubernetes is not None
    assert kubernetes.origin is not None
    site = Path(kubernetes.origin).parent.parent
    return sorted(p for p in site.glob(f"{jsii_speed.PACKAGE_PREFIX}*") if (p / "_jsii").is_dir())


def _first_jsii_type(module_init: Path) -> str:
    with module_init.open("rb") as source:
        while chunk := source.read(1 << 16):
            if found := JSII_TYPE.search(chunk):
                return found.group(1).decode()
    raise AssertionError(f"{module_init}: no jsii type")


def test_every_installed_provider_submodule_maps_to_the_jsii_submodule_it_declares() -> None:
    """The placeholder tells jsii where a type lives from the module's name alone; a wrong
    mapping would leave a type Node returns unknown. Checked for every submodule of every
    installed provider (aws and cloudflare included), by the types each one declares."""
    providers = _installed_providers()
    assert {p.name.removeprefix(jsii_speed.PACKAGE_PREFIX) for p in providers} >= {
        "kubernetes",
        "helm",
        "random",
        "tls",
        "gitlab",
        "aws",
        "cloudflare",
    }
    checked, wrong = 0, []
    for package in providers:
        found = ASSEMBLY.search((package / "_jsii" / "__init__.py").read_bytes())
        assert found, package
        assembly = found.group(1).decode()
        for submodule in sorted(package.iterdir()):
            if not (submodule / "__init__.py").exists() or submodule.name.startswith("_"):
                continue
            declared = _first_jsii_type(submodule / "__init__.py")
            expected = f"{assembly}.{jsii_speed.jsii_submodule_name(submodule.name)}."
            checked += 1
            if not declared.startswith(expected):
                wrong.append(f"{package.name}.{submodule.name}: {declared} (expected {expected}*)")
    assert not wrong, wrong
    assert checked > 3000


def test_jsii_submodule_names() -> None:
    assert jsii_speed.jsii_submodule_name("pod_v1") == "podV1"
    assert jsii_speed.jsii_submodule_name("provider") == "provider"
    assert (
        jsii_speed.jsii_submodule_name("pod_security_policy_v1_beta1") == "podSecurityPolicyV1Beta1"
    )


_PLACEHOLDERS = """
import importlib, json, sys
import stacks
import cdktf_cdktf_provider_kubernetes as kubernetes
from jsii import _reference_map
from jsii._kernel.types import ObjRef
from stacks.jsii_speed import built_provider_modules

report = {"after_package_import": built_provider_modules()}
pod = "@cdktf/provider-kubernetes.podV1.PodV1"
report["pod_known_before"] = pod in _reference_map._types
# A reference Node hands back for a type in a module nobody has imported yet.
resolved = _reference_map._refs.resolve(None, ObjRef(ref=pod + "@10000"))
from cdktf_cdktf_provider_kubernetes.pod_v1 import PodV1
report["resolved_is_pod"] = type(resolved) is PodV1
report["parent_attribute_is_module"] = kubernetes.pod_v1 is sys.modules[PodV1.__module__]
job = importlib.import_module("cdktf_cdktf_provider_kubernetes.job_v1")
report["job_via_import_module"] = "@cdktf/provider-kubernetes.jobV1.JobV1" in _reference_map._types
report["job_class"] = job.JobV1.__name__
report["after"] = built_provider_modules()
json.dump(report, sys.stdout)
"""


def test_provider_submodules_are_built_on_first_use_and_jsii_finds_their_types() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _PLACEHOLDERS],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["after_package_import"] == []
    assert report["pod_known_before"] is False
    assert report["resolved_is_pod"] is True
    assert report["parent_attribute_is_module"] is True
    assert report["job_via_import_module"] is True
    assert report["job_class"] == "JobV1"
    assert report["after"] == [
        "cdktf_cdktf_provider_kubernetes.job_v1",
        "cdktf_cdktf_provider_kubernetes.pod_v1",
    ]


def _provider_modules_our_code_imports() -> set[str]:
    """Every ``cdktf_cdktf_provider_<name>.<submodule>`` named by an import in the code a synth
    runs (the constructs and the stacks)."""
    named: set[str] = set()
    for folder in ("constructs_lib", "stacks"):
        for path in (REPO / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module:
                    parts = node.module.split(".")
                    if parts[0].startswith(jsii_speed.PACKAGE_PREFIX):
                        if len(parts) > 1:
                            named.add(".".join(parts[:2]))
                        else:
                            named.update(f"{node.module}.{alias.name}" for alias in node.names)
    return named


def _provider_modules_the_output_needs(synth: SynthOutput) -> set[str]:
    """The provider submodule behind each resource, data source and provider block written."""
    needed: set[str] = set()
    for _, document in synth.stacks():
        blocks = [
            *document.get("resource", {}),
            *(f"data_{kind}" for kind in document.get("data", {})),
            *(f"{provider}_provider" for provider in document.get("provider", {})),
        ]
        for block in blocks:
            data = block.startswith("data_")
            kind = block.removeprefix("data_")
            if kind.endswith("_provider"):
                provider, module = kind.removesuffix("_provider"), "provider"
            else:
                provider, _, rest = kind.partition("_")
                module = f"data_{provider}_{rest}" if data else rest
            needed.add(f"{jsii_speed.PACKAGE_PREFIX}{provider}.{module}")
    return needed


@pytest.mark.parametrize("which", ["example", "variants"])
def test_a_synth_builds_the_provider_modules_its_output_needs_and_no_others(
    which: str,
    example_cli_synth: tuple[CliRun, SynthOutput],
    variants_cli_synth: tuple[CliRun, SynthOutput],
) -> None:
    run, synth = {"example": example_cli_synth, "variants": variants_cli_synth}[which]
    assert run.code == 0, run.stderr
    built = set(run.provider_modules_built)
    needed = _provider_modules_the_output_needs(synth)
    assert needed <= built, sorted(needed - built)
    assert built <= needed | _provider_modules_our_code_imports(), sorted(built - needed)
    kubernetes = [m for m in built if m.startswith("cdktf_cdktf_provider_kubernetes.")]
    assert len(kubernetes) < 40  # of 109


def _a_stub() -> typing.Any:
    import cdktf

    namespace = vars(cdktf._private)  # type: ignore[attr-defined]  # publication's private half
    return next(v for k, v in namespace.items() if k.startswith(jsii_speed.STUB_PREFIX))


def test_stub_type_hints_are_resolved_once_and_equal_typings() -> None:
    stub = _a_stub()
    first = jsii_speed._get_type_hints_once_per_stub(stub)
    assert first == jsii_speed._get_type_hints(stub)
    assert jsii_speed._get_type_hints_once_per_stub(stub) is first


def test_other_type_hints_pass_through_unchanged() -> None:
    def plain(a: typing.Annotated[int, "x"]) -> None: ...

    once = jsii_speed._get_type_hints_once_per_stub(plain)
    assert once == {"a": int, "return": type(None)}
    assert jsii_speed._get_type_hints_once_per_stub(plain) is not once
    extras = jsii_speed._get_type_hints_once_per_stub(plain, include_extras=True)
    assert extras["a"] == typing.Annotated[int, "x"]
