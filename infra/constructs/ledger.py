"""The dataset ledger's own table (one item per uploaded dataset version, docs/DESIGN.md).

Its own table, not items on the registry table: validate_dataset parses untrusted files, and a
table of its own lets it record decisions without any write permission on the registry (IAM
cannot narrow a grant to a sort-key prefix). Each user gets exactly the calls it makes.
"""

from __future__ import annotations

from constructs import Construct

from infra.constructs.function_defaults import MlopsFunction
from infra.constructs.tables import index_arn, keyed_table


class DatasetLedger(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.table = keyed_table(self, "Table")

    @property
    def table_name(self) -> str:
        return self.table.table_name

    def grant_decisions(self, fn: MlopsFunction) -> None:
        """Record and review decisions (validate_dataset, models_api): read an entry, write it with
        a conditional PutItem, list a model's entries by state on the index."""
        fn.grant(["dynamodb:GetItem", "dynamodb:PutItem"], [self.table.table_arn])
        fn.grant(["dynamodb:Query"], [index_arn(self.table)])

    def grant_index_reads(self, fn: MlopsFunction) -> None:
        """List a model's entries by state on the index (an import finds the last accepted dataset)."""
        fn.grant(["dynamodb:Query"], [index_arn(self.table)])

    def grant_training_outcomes(self, fn: MlopsFunction) -> None:
        """Move an existing entry to a training or registration outcome (train_model, register_model,
        record_training_failure): read it, write it back with a conditional PutItem."""
        fn.grant(["dynamodb:GetItem", "dynamodb:PutItem"], [self.table.table_arn])
