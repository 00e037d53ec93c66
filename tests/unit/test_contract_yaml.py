"""One contract format: a YAML contract is the same document as its JSON, read wherever the
repository's contracts are read (synthesis, `mlops contracts publish`, local mode); the data
bucket holds the canonical JSON `publish` writes, the only form the functions read."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from infra.constructs.monitoring import load_contracts
from mlops.contract import contract_files, parse_contract

REPO_ROOT = Path(__file__).resolve().parents[2]
CHURN_JSON = (REPO_ROOT / "contracts" / "churn.json").read_text()

YES_NO = """
name: subscribers
problem_type: classification
target: {name: renewed, classes: [no, yes]}
features:
  - {name: plan, type: categorical, categories: [yes, no, off]}
  - {name: paid on time, type: boolean}
estimator: {name: logistic_regression}
metric: {name: roc_auc, at_least: 0.6}
"""


def test_yaml_contract_reads_yes_and_no_as_the_labels_the_file_holds() -> None:
    # YAML 1.1 reads yes/no/off as booleans; a contract means the texts
    contract = parse_contract(YES_NO, source="subscribers.yaml")
    assert contract.target.classes == ("no", "yes")
    assert contract.features[0].categories == ("yes", "no", "off")


def test_yaml_contract_is_the_same_contract_as_its_json() -> None:
    as_yaml = yaml.safe_dump(json.loads(CHURN_JSON), sort_keys=False)
    assert parse_contract(as_yaml, source="churn.yaml").digest == parse_contract(CHURN_JSON).digest


def test_repository_contracts_are_read_as_json_or_yaml(tmp_path: Path) -> None:
    (tmp_path / "churn.json").write_text(CHURN_JSON)
    (tmp_path / "subscribers.yaml").write_text(YES_NO)
    (tmp_path / "README.txt").write_text("not a contract")
    assert [p.name for p in contract_files(tmp_path)] == ["churn.json", "subscribers.yaml"]
    assert [c.name for c in load_contracts(tmp_path)] == ["churn", "subscribers"]
