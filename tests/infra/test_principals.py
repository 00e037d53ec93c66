"""Who may act on the models API in a deployed stack: only principals named at deploy time.

The default template names nobody (local mode's stand-in admin in particular); deploy-time
context (`adminPrincipals`, `approverPrincipals`, `readerPrincipals`, `requireMfa`) names the
principals each role trusts, with MFA required by default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.constructs.access import ENV_NAMES, PrincipalContextError, human_principals
from mlops.registry.access import Role
from tests.infra.support import function_ids, resources

ALICE = "arn:aws:iam::111122223333:user/alice"
PLATFORM = "arn:aws:iam::111122223333:role/platform-admins"
BOB = "arn:aws:iam::111122223333:user/bob"
MFA = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


def _synth(outdir: Path, context: dict[str, Any]) -> dict[str, Any]:
    from infra.synth import synthesize_template

    return synthesize_template(outdir, context=context)


@pytest.fixture(scope="module")
def named_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Synthesized with admins and approvers named on the command line (`-c key=a,b` arrives as text)."""
    context = {"adminPrincipals": f"{ALICE},{PLATFORM}", "approverPrincipals": [BOB]}
    return _synth(tmp_path_factory.mktemp("named"), context)


@pytest.fixture(scope="module")
def local_template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from mlops_local.runtime import LOCAL_SYNTH_CONTEXT

    return _synth(tmp_path_factory.mktemp("local"), LOCAL_SYNTH_CONTEXT)


def _human_role_ids(template: dict[str, Any]) -> dict[str, str]:
    """Role description prefix `models API <role>` -> the role's logical id."""
    return {
        role["Properties"]["Description"].split(" (")[0]: lid
        for lid, role in resources(template, "AWS::IAM::Role").items()
        if role["Properties"].get("Description", "").startswith("models API ")
    }


def _human_roles(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {title: template["Resources"][lid] for title, lid in _human_role_ids(template).items()}


def _trust(role: dict[str, Any]) -> list[dict[str, Any]]:
    return role["Properties"]["AssumeRolePolicyDocument"]["Statement"]


def _trusted_arns(role: dict[str, Any]) -> set[str]:
    found = set()
    for statement in _trust(role):
        principal = statement["Principal"]["AWS"]
        found.update(principal if isinstance(principal, list) else [principal])
    return found


def _principal_env(template: dict[str, Any]) -> dict[str, str]:
    variables = template["Resources"][function_ids(template)["models_api"]]["Properties"]["Environment"]["Variables"]
    return {name: json.dumps(variables.get(name, "")) for name in ENV_NAMES.values()}


# ---- the context, parsed -----------------------------------------------------------------------


def test_human_principals_default_to_nobody_with_mfa_required() -> None:
    principals = human_principals({})
    assert principals.require_mfa is True
    assert all(principals.of(role) == () for role in Role)


def test_human_principals_accept_lists_and_comma_separated_text() -> None:
    principals = human_principals(
        {"adminPrincipals": f" {ALICE} ,{PLATFORM}", "readerPrincipals": [BOB], "requireMfa": "false"}
    )
    assert principals.of(Role.ADMIN) == (ALICE, PLATFORM)
    assert principals.of(Role.READER) == (BOB,)
    assert principals.of(Role.APPROVER) == ()
    assert principals.require_mfa is False


def test_cdk_json_declares_the_keys_with_nobody_named_and_mfa_required() -> None:
    from infra.synth import cli_context

    context = cli_context()
    assert {"adminPrincipals", "approverPrincipals", "readerPrincipals", "requireMfa"} <= set(context)
    principals = human_principals(context)
    assert principals.require_mfa is True
    assert all(principals.of(role) == () for role in Role)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"adminPrincipals": "arn:aws:iam::111122223333:root"}, "adminPrincipals"),  # the whole account
        ({"approverPrincipals": ["*"]}, "approverPrincipals"),
        ({"readerPrincipals": "arn:aws:iam::111122223333:user/*"}, "readerPrincipals"),
        ({"adminPrincipals": "arn:aws:sts::111122223333:assumed-role/x/y"}, "adminPrincipals"),
        ({"adminPrincipals": 42}, "adminPrincipals"),
        ({"requireMfa": "maybe"}, "requireMfa"),
    ],
)
def test_human_principals_refuse_anything_but_user_and_role_arns(context: dict[str, Any], named: str) -> None:
    with pytest.raises(PrincipalContextError, match=named):
        human_principals(context)


# ---- the default template -----------------------------------------------------------------------


def test_default_template_names_no_local_admin_anywhere(template: dict[str, Any]) -> None:
    assert "local-admin" not in json.dumps(template)


def test_default_template_trusts_no_human_principal(template: dict[str, Any]) -> None:
    # nobody is named: no human role exists to be assumed, and models_api maps nobody to a role
    assert _human_roles(template) == {}
    assert set(_principal_env(template).values()) == {'""'}
    # the managed policies stay, each route set ready to attach
    assert len(resources(template, "AWS::IAM::ManagedPolicy")) == len(Role)


def test_no_role_in_the_stack_trusts_a_whole_account(template: dict[str, Any], named_template: dict[str, Any]) -> None:
    for body in (template, named_template):
        for lid, role in resources(body, "AWS::IAM::Role").items():
            assert ":root" not in json.dumps(role["Properties"]["AssumeRolePolicyDocument"]), lid


# ---- named principals ----------------------------------------------------------------------------


def test_named_roles_trust_exactly_their_principals_with_mfa(named_template: dict[str, Any]) -> None:
    roles = _human_roles(named_template)
    assert set(roles) == {"models API admin", "models API approver"}  # no reader was named
    assert _trusted_arns(roles["models API admin"]) == {ALICE, PLATFORM}
    assert _trusted_arns(roles["models API approver"]) == {BOB}
    for role in roles.values():
        for statement in _trust(role):
            assert statement["Action"] == "sts:AssumeRole"
            assert statement["Condition"] == MFA
    # each role holds exactly its own managed policy (the routes its registry role may invoke)
    role_ids = _human_role_ids(named_template)
    for policy in resources(named_template, "AWS::IAM::ManagedPolicy").values():
        title = policy["Properties"]["Description"].split(":")[0]
        expected = [{"Ref": role_ids[title]}] if title in role_ids else []
        assert policy["Properties"].get("Roles", []) == expected, title


def test_models_api_maps_only_mfa_role_sessions_when_mfa_is_required(named_template: dict[str, Any]) -> None:
    env = _principal_env(named_template)
    assert ":assumed-role/" in env["ADMIN_PRINCIPALS"]
    assert ":assumed-role/" in env["APPROVER_PRINCIPALS"]
    assert env["READER_PRINCIPALS"] == '""'
    # a direct call by alice carries no MFA the function could check: only her role session counts
    assert ALICE not in env["ADMIN_PRINCIPALS"]
    assert BOB not in env["APPROVER_PRINCIPALS"]


def test_local_synth_context_makes_local_admin_an_admin(local_template: dict[str, Any]) -> None:
    from mlops_local.runtime import LOCAL_ADMIN_ARN

    env = _principal_env(local_template)
    assert LOCAL_ADMIN_ARN in env["ADMIN_PRINCIPALS"]
    assert "local-admin" not in env["APPROVER_PRINCIPALS"] + env["READER_PRINCIPALS"]
    [admin] = _human_roles(local_template).values()
    assert _trusted_arns(admin) == {LOCAL_ADMIN_ARN}
    assert all("Condition" not in statement for statement in _trust(admin))  # local mode has no MFA
