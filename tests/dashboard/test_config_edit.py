"""Edits from the change form change exactly the edited values of organization.yaml, and the
loader's verdict on the whole file comes back beside the edited fields."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config_model.loader import EXAMPLE_CONFIG, ConfigError, load_config, load_config_text
from dashboard.config_edit import (
    FIELDS,
    Edit,
    EditError,
    apply_edits,
    current_values,
    parse_form,
)

ORIGINAL = EXAMPLE_CONFIG.read_text()
NAME = Path("config/organization.yaml")


def edit(text: str = ORIGINAL, env: str = "dev", scope: str = "environment", **values):
    edits = [Edit(key=k.replace("__", "."), value=v) for k, v in values.items()]
    return apply_edits(text, path=NAME, environment=env, scope=scope, edits=edits)  # type: ignore[arg-type]


def test_a_base_value_changes_in_place_and_nothing_else():
    result = edit(scope="base", runners__types__docker__concurrent=12)

    old = "      concurrent: 10                 # jobs at once per manager: the capacity ceiling"
    assert result.text == ORIGINAL.replace(old, old.replace("10", "12"), 1)
    assert result.valid
    assert result.written == {"runners.types.docker.concurrent": "runners.types.docker.concurrent"}
    changed = [line for line in result.diff.splitlines()[2:] if line[:1] in "+-"]
    assert changed == [f"-{old}", f"+{old.replace('10', '12')}"]


def test_a_flow_mapping_keeps_its_style():
    result = edit(
        scope="base", runners__types__rocky8__replicas=2, runners__types__rocky9__concurrent=6
    )

    expected = ORIGINAL.replace("rocky8: {concurrent: 4}", "rocky8: {concurrent: 4, replicas: 2}")
    expected = expected.replace("rocky9: {concurrent: 4}", "rocky9: {concurrent: 6}")
    assert result.text == expected
    assert result.valid


def test_an_environment_edit_changes_the_overridden_flow_value():
    result = edit(env="dev", attic__api__max_replicas=4)

    old = "        api: {min_replicas: 1, max_replicas: 3}"
    assert result.text == ORIGINAL.replace(old, old.replace("3}", "4}"), 1)
    assert result.config is not None
    assert result.config.environments["dev"].config.attic.api.max_replicas == 4
    assert result.config.environments["prod"].config.attic.api.max_replicas == 10


def test_a_missing_key_goes_where_the_model_orders_it():
    result = edit(scope="base", runners__types__dind__enabled=False)

    # enabled comes before concurrent in the model: inserted above it, same indentation.
    assert "    dind:\n      enabled: false\n      concurrent: 4 " in result.text
    assert result.text.replace("      enabled: false\n", "", 1) == ORIGINAL


def test_a_missing_nested_key_goes_after_the_keys_the_model_orders_first():
    result = edit(scope="base", runners__types__nix__gitlab__tags=("nix", "big"))

    inserted = "      gitlab:\n        tags: [nix, big]\n"
    assert (
        "      poll_timeout: 900              # raise for node pools that scale from zero\n"
        + inserted
        in result.text
    )
    assert result.text.replace(inserted, "", 1) == ORIGINAL


def test_a_missing_key_goes_above_the_comment_lines_of_the_key_it_precedes():
    result = edit(scope="base", runners__types__dind__replicas=2)

    # replicas comes after concurrent and before jobs, whose comment lines stay with it.
    assert (
        "      concurrent: 4                  # privileged job pods, in their own namespace\n"
        "      replicas: 2\n"
        "      # ...and on their own nodes (the default): label and taint a node pool\n"
    ) in result.text
    assert result.text.replace("      replicas: 2\n", "", 1) == ORIGINAL


def test_an_environment_without_runner_overrides_gets_a_block_in_model_order():
    result = edit(env="staging", runners__types__docker__concurrent=6)

    block = "      runners:\n        types:\n          docker:\n            concurrent: 6\n"
    assert "backup: {in_cluster: allow}\n" + block + "  prod:\n" in result.text
    assert result.text.replace(block, "", 1) == ORIGINAL
    assert result.config is not None
    assert result.config.environments["staging"].config.runners.types.docker.concurrent == 6
    assert result.config.environments["prod"].config.runners.types.docker.concurrent == 10


def test_an_empty_overrides_key_is_filled():
    lines = ORIGINAL.split("\n")
    start, end = (
        lines.index("  prod:"),
        lines.index("# What platform-<env> installs. 'external' = already present in the cluster."),
    )
    prod = [
        "  prod:",
        "    cluster_context: c",
        "    domain: example.com",
        "    overrides:   # none yet",
        "",
    ]
    text = "\n".join([*lines[:start], *prod, *lines[end:]])

    result = edit(text, env="prod", runners__types__docker__replicas=2)

    block = "      runners:\n        types:\n          docker:\n            replicas: 2\n"
    assert "    overrides:   # none yet\n" + block in result.text
    assert result.text.replace(block, "", 1) == text
    assert result.valid


def test_block_sequences_stay_block_and_odd_tags_are_quoted():
    text = ORIGINAL.replace(
        "      gitlab: {tags: [docker], access_level: not_protected, maximum_timeout: 10800}",
        "      gitlab:\n        tags:\n          - docker\n          - linux   # os\n"
        "        access_level: not_protected",
    )
    result = edit(
        text, scope="base", runners__types__docker__gitlab__tags=("docker", "yes", "a: b", "x#y")
    )

    assert (
        "        tags:\n          - docker\n"
        '          - "yes"\n          - "a: b"\n          - "x#y"\n'
        "        access_level"
    ) in result.text
    assert result.config is not None
    tags = result.config.base.runners.types.docker.gitlab.tags
    assert tags == ["docker", "yes", "a: b", "x#y"]


def test_an_invalid_value_gets_the_loaders_message_beside_its_field():
    result = edit(env="prod", runners__types__docker__concurrent=0)

    assert not result.valid
    (message,) = result.field_problems["runners.types.docker.concurrent"]
    assert message.startswith(
        "environments.prod.overrides.runners.types.docker.concurrent: input should be greater "
        "than or equal to 1 (got 0) [config/organization.yaml:"
    )
    # The same line `attic-iac validate` prints for that file.
    with pytest.raises(ConfigError) as raised:
        load_config_text(result.text, NAME)
    assert message in raised.value.lines


def test_a_cross_field_rule_names_the_edited_field():
    result = edit(env="staging", scope="base", attic__api__min_replicas=11)

    assert result.field_problems["attic.api.min_replicas"][0].startswith(
        "attic.api.min_replicas: must not exceed attic.api.max_replicas (10)"
    )


def test_a_rule_about_another_key_is_a_general_problem():
    result = edit(scope="base", runners__types__docker__concurrent=400)

    assert not result.valid
    assert result.field_problems == {}
    assert any(p.startswith("runners.budgets.jobs.quota.") for p in result.problems)


def test_a_base_edit_under_an_environments_override_is_refused_for_that_environment():
    result = edit(env="dev", scope="base", attic__api__max_replicas=4)

    assert not result.valid
    assert (
        "environments.dev.overrides sets attic.api.max_replicas"
        in result.field_problems["attic.api.max_replicas"][0]
    )


def test_fails_when_the_field_is_not_editable_or_the_value_has_the_wrong_type():
    with pytest.raises(EditError, match="not a field the dashboard may edit"):
        edit(scope="base", gitlab__url="https://evil.example")
    with pytest.raises(EditError, match="expected int"):
        edit(scope="base", runners__types__docker__concurrent="12")
    with pytest.raises(EditError, match="environment 'nope'"):
        edit(env="nope", runners__types__docker__concurrent=3)


def test_fails_when_an_edit_would_change_more_than_its_value():
    text = ORIGINAL.replace(
        "    rocky8: {concurrent: 4}\n    rocky9: {concurrent: 4}",
        "    rocky8: &same {concurrent: 4}\n    rocky9: *same",
    )

    with pytest.raises(EditError, match="more than the edited values"):
        edit(text, scope="base", runners__types__rocky8__concurrent=5)


def test_a_file_without_a_final_newline_is_edited_cleanly():
    text = ORIGINAL.rstrip("\n")

    result = edit(text, scope="base", runners__types__rocky9__replicas=3)

    assert result.valid
    assert result.text == text.replace(
        "rocky9: {concurrent: 4}", "rocky9: {concurrent: 4, replicas: 3}"
    )


@pytest.mark.parametrize("scope", ["environment", "base"])
def test_every_field_in_every_scope_sets_the_effective_value(scope: str, example_config):
    env = "staging"
    before = current_values(example_config.environments[env].config)
    new_values = {
        "bool": lambda v: not v,
        "int": lambda v: v + 1,
        "tags": lambda v: (*v, "extra"),
    }
    edits = [Edit(key=f.key, value=new_values[f.kind](before[f.key])) for f in FIELDS]

    result = apply_edits(ORIGINAL, path=NAME, environment=env, scope=scope, edits=edits)  # type: ignore[arg-type]

    # Valid or not (quotas), the file holds exactly the intended values.
    loaded = yaml.safe_load(result.text)
    for e in edits:
        node = loaded if scope == "base" else loaded["environments"][env]["overrides"]
        for part in e.key.split("."):
            node = node[part]
        assert node == (list(e.value) if isinstance(e.value, tuple) else e.value)


def test_the_form_yields_only_changed_fields_and_a_message_per_bad_value(example_config):
    current = current_values(example_config.environments["dev"].config)

    edits, errors = parse_form(
        {
            "runners.types.docker.concurrent": "10",
            "runners.types.nix.concurrent": " 6 ",
            "runners.types.dind.enabled": "false",
            "runners.types.rocky8.replicas": "two",
            "runners.types.nix.gitlab.tags": "nix, big ,",
            "runners.types.docker.gitlab.tags": "docker",
            "gitlab.url": "https://elsewhere",
        },
        current,
    )

    assert sorted(edits, key=lambda e: e.key) == [
        Edit(key="runners.types.dind.enabled", value=False),
        Edit(key="runners.types.nix.concurrent", value=6),
        Edit(key="runners.types.nix.gitlab.tags", value=("nix", "big")),
    ]
    assert errors == {"runners.types.rocky8.replicas": "must be a whole number (got 'two')"}


def test_load_config_text_is_load_config_without_the_file():
    assert load_config_text(ORIGINAL, EXAMPLE_CONFIG) == load_config(EXAMPLE_CONFIG)


def test_config_errors_carry_the_key_of_each_line():
    with pytest.raises(ConfigError) as raised:
        load_config_text(ORIGINAL.replace("url: https://gitlab.com", "url: http://x"), NAME)

    assert raised.value.keys == ["gitlab.url"]
    assert raised.value.lines[0].startswith("gitlab.url: ")
