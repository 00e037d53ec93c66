"""Importing a model built elsewhere (issue 9 item 6): checks, the suite's holdout score, the stored
artifact and ModelTrained, and clear reports for graphs that do not fit the contract."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from sklearn.metrics import roc_auc_score

from mlops.errors import BadRequestError
from mlops.events import DatasetRef, DetailType, ModelImportRejected, ModelTrained
from mlops.imports.drops import ImportDrop
from mlops.imports.graph import GraphRejectedError, check_graph
from mlops.imports.requests import ImportRequest, request_import
from mlops.imports.service import import_model
from mlops.layout import artifact_key, baseline_key, contract_key, import_id, import_report_key
from mlops.profile import BaselineProfile
from mlops.training.dataset import frame_feed, read_dataset
from mlops.training.onnx_io import META_CLASSES
from mlops.training.trainer import split_holdout, target_values, train_model
from mlops_local.sample_data import churn_dataset
from tests.support.datasets import InMemoryDatasetLedger, RecordingNotifier, accepted_entry, churn_contract
from tests.support.external_models import lightgbm_pipeline, to_onnx_bytes
from tests.support.fakes import InMemoryObjectStore, RecordingPublisher, SignedUrls

CONTRACT = churn_contract()
DATA, ARTIFACTS = "data", "artifacts"
DATASET_KEY = "datasets/churn/2026-12.csv"
DROP_KEY = "models/churn/incoming/lgbm.onnx"
ROWS = 600


@pytest.fixture(scope="module")
def frame():  # type: ignore[no-untyped-def]
    return read_dataset(churn_dataset(ROWS).to_csv(index=False).encode(), DATASET_KEY, CONTRACT)


@pytest.fixture(scope="module")
def lgbm_bytes(frame) -> bytes:  # type: ignore[no-untyped-def]
    return to_onnx_bytes(lightgbm_pipeline(frame, CONTRACT), CONTRACT)


def staged(*, contract_digest: str | None = CONTRACT.digest) -> tuple[InMemoryObjectStore, InMemoryDatasetLedger]:
    """A data bucket with the contract and an accepted dataset, and the ledger entry validation left."""
    store = InMemoryObjectStore()
    store.put_bytes(DATA, contract_key("churn"), json.dumps(CONTRACT.model_dump(mode="json")).encode())
    data = churn_dataset(ROWS).to_csv(index=False).encode()
    version = store.put_bytes(DATA, DATASET_KEY, data, "text/csv")
    ref = DatasetRef(
        bucket=DATA,
        key=DATASET_KEY,
        version_id=version,
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        rows=ROWS,
    )
    ledger = InMemoryDatasetLedger()
    ledger.record(accepted_entry(ref).model_copy(update={"contract_digest": contract_digest}))
    return store, ledger


def drop(store: InMemoryObjectStore, data: bytes, key: str = DROP_KEY) -> ImportDrop:
    version = store.put_bytes(DATA, key, data)
    return ImportDrop(bucket=DATA, key=key, version_id=version, uploaded_by="AWS:AROAUPLOADER:alice", uploaded_at=None)


def run(store: Any, ledger: Any, the_drop: ImportDrop, **kwargs: Any):  # type: ignore[no-untyped-def]
    publisher, notifier = RecordingPublisher(), RecordingNotifier()
    outcome = import_model(
        the_drop,
        store=store,
        publisher=publisher,
        ledger=ledger,
        data_bucket=DATA,
        artifact_bucket=ARTIFACTS,
        notifier=notifier,
        **kwargs,
    )
    return outcome, publisher, notifier


def rejected_problems(store: Any, ledger: Any, the_drop: ImportDrop, **kwargs: Any) -> list[str]:
    outcome, publisher, notifier = run(store, ledger, the_drop, **kwargs)
    assert outcome.detail_type == DetailType.MODEL_IMPORT_REJECTED
    assert [t for t, _ in publisher.events] == [DetailType.MODEL_IMPORT_REJECTED]
    assert not [key for (bucket, key) in store.objects if bucket == ARTIFACTS]  # nothing stored, nothing registered
    assert len(notifier.messages) == 1
    assert isinstance(outcome.detail, ModelImportRejected)
    report = json.loads(store.get_bytes(DATA, outcome.report_key))
    assert report["outcome"] == "rejected"
    assert report["problems"] == outcome.detail.problems
    return outcome.detail.problems


def test_import_model_scores_a_lightgbm_graph_on_the_suites_own_holdout(frame, lgbm_bytes: bytes) -> None:  # type: ignore[no-untyped-def]
    # GIVEN a LightGBM model converted with onnxmltools, dropped by an approver through an upload URL
    store, ledger = staged()
    urls = SignedUrls()
    upload = request_import(
        "churn",
        ImportRequest(file_name="lgbm.onnx", reason="the vendor's model"),
        importer="arn:aws:sts::1:assumed-role/approver/bob",
        store=store,
        urls=urls,
        data_bucket=DATA,
    )
    assert urls.signed == [(DATA, upload.key, 900)]
    the_drop = drop(store, lgbm_bytes, key=upload.key)
    # WHEN it is imported
    outcome, publisher, _ = run(store, ledger, the_drop)
    # THEN ModelTrained says imported, by whom, from which file
    assert outcome.detail_type == DetailType.MODEL_TRAINED
    trained = outcome.detail
    assert isinstance(trained, ModelTrained)
    assert publisher.events == [(DetailType.MODEL_TRAINED, trained)]
    assert trained.origin == "imported"
    assert trained.imported is not None
    assert trained.imported.importer == "arn:aws:sts::1:assumed-role/approver/bob"
    assert trained.imported.uploaded_by == "AWS:AROAUPLOADER:alice"
    assert trained.imported.reason == "the vendor's model"
    assert trained.imported.sha256 == hashlib.sha256(lgbm_bytes).hexdigest()
    assert trained.imported.key == upload.key
    # AND the metrics are the suite's own: the training split's holdout, scored with onnxruntime
    y = target_values(frame, CONTRACT)
    _, holdout_index = split_holdout(frame, y, CONTRACT)
    holdout = frame.iloc[holdout_index]
    session = ort.InferenceSession(lgbm_bytes, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["label", "probabilities"], frame_feed(holdout, CONTRACT))
    assert trained.holdout_rows == len(holdout_index)
    assert trained.metrics["accuracy"] == pytest.approx(float(np.mean(labels == y[holdout_index])))
    assert next(iter(trained.metrics)) == "roc_auc"

    assert trained.metrics["roc_auc"] == pytest.approx(roc_auc_score(y[holdout_index] == "yes", probabilities[:, 1]))
    assert trained.dataset.key == DATASET_KEY
    # AND the artifact is content-addressed, the graph plus the suite's metadata, with a baseline
    stored = store.get_bytes(ARTIFACTS, trained.artifact_key)
    assert trained.artifact_key == artifact_key("churn", hashlib.sha256(stored).hexdigest())
    assert trained.artifact_sha256 == hashlib.sha256(stored).hexdigest() != trained.imported.sha256
    props = {p.key: p.value for p in onnx.load_from_string(stored).metadata_props}
    assert json.loads(props[META_CLASSES]) == ["no", "yes"]
    assert props["mlops.origin"] == "imported"
    assert props["mlops.source_sha256"] == trained.imported.sha256
    assert trained.baseline_key == baseline_key("churn", trained.artifact_sha256)
    profile = BaselineProfile.model_validate_json(store.get_bytes(ARTIFACTS, trained.baseline_key))
    assert set(profile.features) == {f.name for f in CONTRACT.features}
    assert profile.rows == ROWS - len(holdout_index)
    # AND the report says imported, with the scores
    report = json.loads(store.get_bytes(DATA, import_report_key("churn", import_id(upload.key, the_drop.version_id))))
    assert report["outcome"] == "imported"
    assert report["metrics"] == trained.metrics


def test_import_model_without_an_upload_url_records_the_uploader_as_importer(lgbm_bytes: bytes) -> None:
    store, ledger = staged()
    outcome, _, _ = run(store, ledger, drop(store, lgbm_bytes))
    assert outcome.detail.imported.importer == "AWS:AROAUPLOADER:alice"  # type: ignore[union-attr]


def test_import_model_scores_the_suites_own_export_as_training_scored_it(frame) -> None:  # type: ignore[no-untyped-def]
    # a graph exported by the suite is a graph "whose inputs match a contract": same holdout, same numbers
    trained = train_model(frame, CONTRACT)
    store, ledger = staged()
    outcome, _, _ = run(store, ledger, drop(store, trained.onnx_bytes))
    assert outcome.detail.metrics == pytest.approx(trained.metrics)  # type: ignore[union-attr]


def test_import_model_rejects_wrong_input_names_naming_each(frame) -> None:  # type: ignore[no-untyped-def]
    pipeline = lightgbm_pipeline(frame, CONTRACT)
    data = to_onnx_bytes(pipeline, CONTRACT, rename={"tenure_months": "tenure", "plan": "plan_name"})
    store, ledger = staged()
    problems = rejected_problems(store, ledger, drop(store, data))
    assert problems == [
        "input 'tenure_months' (numeric feature): expected a float or double tensor [N, 1], found none",
        "input 'plan' (categorical feature): expected a string tensor [N, 1], found none",
        "input 'plan_name': not a feature of the contract (found a string tensor of shape ['?', 1])",
        "input 'tenure': not a feature of the contract (found a float tensor of shape ['?', 1])",
    ]


def test_import_model_rejects_a_model_of_other_classes(frame) -> None:  # type: ignore[no-untyped-def]
    # trained on 0/1 instead of the contract's "no"/"yes"
    labels = (frame[CONTRACT.target.name] == "yes").astype(int).to_numpy()
    data = to_onnx_bytes(lightgbm_pipeline(frame, CONTRACT, labels=labels), CONTRACT)
    store, ledger = staged()
    problems = rejected_problems(store, ledger, drop(store, data))
    assert problems == ["classes: expected the contract's ['no', 'yes'], found ['0', '1']"]


def test_import_model_rejects_zipmap_outputs_with_a_hint(frame) -> None:  # type: ignore[no-untyped-def]
    data = to_onnx_bytes(lightgbm_pipeline(frame, CONTRACT), CONTRACT, zipmap=True)
    store, ledger = staged()
    problems = rejected_problems(store, ledger, drop(store, data))
    found = "found 'output_label': a string tensor of shape ['?'], 'output_probability': a sequence of maps (a ZipMap output)"
    assert problems == [
        f"output 'label': expected a string or int64 label tensor [N], {found}",
        f"output 'probabilities': expected a float probability tensor [N, classes], {found}"
        " (convert the classifier with zipmap disabled, e.g. options={id(model): {'zipmap': False}})",
    ]


@pytest.mark.parametrize(
    "data",
    [b"tenure_months,plan\n1,basic\n", b"\x80\x81\x82 not protobuf", b"", b"PK\x03\x04 a zip, maybe a pickle"],
    ids=["csv", "garbage", "empty", "zip"],
)
def test_import_model_rejects_a_file_that_is_not_onnx(data: bytes) -> None:
    store, ledger = staged()
    problems = rejected_problems(store, ledger, drop(store, data))
    assert len(problems) == 1
    assert problems[0].startswith("the file is not an ONNX model")


def test_import_model_refuses_a_too_large_file_without_reading_it(lgbm_bytes: bytes) -> None:
    store, ledger = staged()
    the_drop = drop(store, lgbm_bytes)
    reads: list[str] = []
    original = store.get_bytes
    store.get_bytes = lambda bucket, key, version_id=None: reads.append(key) or original(bucket, key, version_id)  # type: ignore[method-assign]
    problems = rejected_problems(store, ledger, the_drop, max_bytes=len(lgbm_bytes) - 1)
    assert problems == [f"the file is {len(lgbm_bytes)} bytes; imports are limited to {len(lgbm_bytes) - 1} bytes"]
    assert DROP_KEY not in reads


def test_import_model_needs_an_accepted_dataset_under_the_current_contract(lgbm_bytes: bytes) -> None:
    store, _ = staged()
    problems = rejected_problems(store, InMemoryDatasetLedger(), drop(store, lgbm_bytes))
    assert problems == ["model 'churn' has no accepted dataset to score the import on; upload one under datasets/"]
    store, ledger = staged(contract_digest="0" * 64)
    problems = rejected_problems(store, ledger, drop(store, lgbm_bytes))
    assert problems[0].startswith("the last accepted dataset 2026-12.csv-")
    assert "was validated against another contract" in problems[0]


@pytest.mark.parametrize(
    "key",
    [
        "models/churn/lgbm.onnx",
        "models/churn/incoming/lgbm.pkl",
        "models/Churn/incoming/x.onnx",
        "datasets/churn/x.onnx",
    ],
)
def test_import_model_rejects_a_key_that_is_no_import_drop(lgbm_bytes: bytes, key: str) -> None:
    store, ledger = staged()
    outcome, publisher, _ = run(store, ledger, drop(store, lgbm_bytes, key=key))
    assert outcome.detail_type == DetailType.MODEL_IMPORT_REJECTED
    assert "is not an import drop models/<model>/incoming/<file>.onnx" in outcome.detail.problems[0]  # type: ignore[union-attr]
    assert [t for t, _ in publisher.events] == [DetailType.MODEL_IMPORT_REJECTED]


def test_check_graph_rejects_probability_columns_out_of_class_order(lgbm_bytes: bytes, frame) -> None:  # type: ignore[no-untyped-def]
    # the graph claims its columns are ["yes", "no"]: the labels then contradict the probabilities
    model = onnx.load_from_string(lgbm_bytes)
    onnx.helper.set_model_props(model, {META_CLASSES: json.dumps(["yes", "no"])})
    store, ledger = staged()
    problems = rejected_problems(store, ledger, drop(store, model.SerializeToString()))
    assert len(problems) == 1
    assert problems[0].startswith("outputs: on ")
    assert problems[0].endswith("the probability columns are not in the order ['yes', 'no']")


def test_check_graph_refuses_custom_operator_domains(lgbm_bytes: bytes) -> None:
    model = onnx.load_from_string(lgbm_bytes)
    model.opset_import.append(onnx.helper.make_opsetid("com.example.native", 1))
    with pytest.raises(GraphRejectedError) as raised:
        check_graph(model.SerializeToString(), CONTRACT)
    assert raised.value.problems[0] == (
        "operator domains ['com.example.native'] need custom-op libraries; only the standard ONNX domains load"
    )


def test_request_import_signs_a_fresh_incoming_key_and_records_who_asked() -> None:
    store, urls = InMemoryObjectStore(), SignedUrls()
    upload = request_import(
        "churn",
        ImportRequest(file_name="vendor.v2.onnx"),
        importer="arn:aws:sts::1:assumed-role/approver/bob",
        store=store,
        urls=urls,
        data_bucket=DATA,
        token=lambda: "0a1b2c3d",
    )
    assert upload.key.startswith("models/churn/incoming/vendor.v2-")
    assert upload.key.endswith("-0a1b2c3d.onnx")
    assert upload.upload_url == f"https://{DATA}.example/{upload.key}?signature=fake"
    [(bucket, ticket_key)] = [k for k in store.objects if k[1].startswith("models/churn/requests/")]
    assert json.loads(store.get_bytes(bucket, ticket_key))["importer"] == "arn:aws:sts::1:assumed-role/approver/bob"


@pytest.mark.parametrize(
    ("name", "file_name", "message"),
    [
        ("Churn", "a.onnx", "'Churn' is not a valid model name"),
        ("churn", "../a.onnx", "file_name '../a.onnx' is not a plain ONNX file name"),
        ("churn", "a.pkl", "file_name 'a.pkl' is not a plain ONNX file name"),
        ("churn", "a b.onnx", "file_name 'a b.onnx' is not a plain ONNX file name"),
    ],
)
def test_request_import_refuses_bad_names(name: str, file_name: str, message: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        request_import(
            name,
            ImportRequest(file_name=file_name),
            importer="x",
            store=InMemoryObjectStore(),
            urls=SignedUrls(),
            data_bucket=DATA,
        )
    assert str(raised.value).startswith(message)


def test_import_model_scores_a_lightgbm_regressor_as_training_scores_regression() -> None:
    from sklearn.metrics import r2_score

    from tests.unit.test_training import regression_contract, regression_frame

    contract = regression_contract()
    raw = regression_frame(ROWS)
    frame = read_dataset(raw.to_csv(index=False).encode(), "x.csv", contract)
    data = to_onnx_bytes(lightgbm_pipeline(frame, contract), contract)
    store, ledger = InMemoryObjectStore(), InMemoryDatasetLedger()
    store.put_bytes(DATA, contract_key("charges"), json.dumps(contract.model_dump(mode="json")).encode())
    csv = raw.to_csv(index=False).encode()
    key = "datasets/charges/x.csv"
    version = store.put_bytes(DATA, key, csv)
    ref = DatasetRef(
        bucket=DATA, key=key, version_id=version, sha256=hashlib.sha256(csv).hexdigest(), size_bytes=len(csv), rows=ROWS
    )
    ledger.record(accepted_entry(ref, model_name="charges").model_copy(update={"contract_digest": contract.digest}))
    outcome, _, _ = run(store, ledger, drop(store, data, key="models/charges/incoming/lgbm.onnx"))
    trained = outcome.detail
    assert isinstance(trained, ModelTrained), outcome.detail
    y = target_values(frame, contract)
    _, holdout_index = split_holdout(frame, y, contract)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    [values] = session.run(["variable"], frame_feed(frame.iloc[holdout_index], contract))
    assert next(iter(trained.metrics)) == "r2"
    assert trained.metrics["r2"] == pytest.approx(r2_score(y[holdout_index], values.ravel()))


def test_check_graph_names_inputs_of_the_wrong_type_with_what_it_found(lgbm_bytes: bytes) -> None:
    model = onnx.load_from_string(lgbm_bytes)
    inputs = {value.name: value for value in model.graph.input}
    inputs["plan"].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    inputs["tenure_months"].type.tensor_type.elem_type = onnx.TensorProto.INT64
    inputs["region"].type.tensor_type.shape.dim[1].dim_value = 3
    with pytest.raises(GraphRejectedError) as raised:
        check_graph(model.SerializeToString(), CONTRACT)
    assert raised.value.problems[:3] == [
        "input 'tenure_months' (numeric feature): expected a float or double tensor [N, 1], "
        "found a int64 tensor of shape ['?', 1]",
        "input 'plan' (categorical feature): expected a string tensor [N, 1], found a float tensor of shape ['?', 1]",
        "input 'region' (categorical feature): expected a string tensor [N, 1], found a string tensor of shape ['?', 3]",
    ]


def test_import_model_reports_a_graph_onnxruntime_cannot_run(frame) -> None:  # type: ignore[no-untyped-def]
    # double-precision inputs through scikit-learn's imputer: the ai.onnx.ml Imputer has no double
    # kernel in onnxruntime (the project's facts), so the session cannot be created
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    trained = train_model(frame, CONTRACT)
    types = [
        (f.name, StringTensorType([None, 1]) if f.type.value == "categorical" else DoubleTensorType([None, 1]))
        for f in CONTRACT.features
    ]
    estimator = trained.pipeline.named_steps["estimator"]
    graph = convert_sklearn(trained.pipeline, initial_types=types, options={id(estimator): {"zipmap": False}})
    store, ledger = staged()
    # in double precision the classifier is plain MatMul arithmetic: no node names the classes
    problems = rejected_problems(store, ledger, drop(store, graph.SerializeToString()))
    assert problems == [
        "classes: cannot tell which class each probability column is (no classifier node names its classes); "
        "name them, in column order, as a JSON list in the model's metadata_props 'mlops.classes'"
    ]
    # named, it gets as far as onnxruntime, which cannot create the session
    onnx.helper.set_model_props(graph, {META_CLASSES: json.dumps(["no", "yes"])})
    store, ledger = staged()
    problems = rejected_problems(store, ledger, drop(store, graph.SerializeToString()))
    assert len(problems) == 1
    assert problems[0].startswith("onnxruntime cannot run the graph: ")


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("models/churn/incoming/lgbm.onnx", None),
        ("models/churn/incoming/v2.final.onnx", None),
        ("models/churn/lgbm.onnx", "the key is not models/<model>/incoming/<file>.onnx"),
        ("models/churn/incoming/sub/lgbm.onnx", "the key is not models/<model>/incoming/<file>.onnx"),
        ("models/churn/incoming/.onnx", "the file name '.onnx' is not a plain <name>.onnx"),
        ("models/churn/incoming/lgbm.pkl", "the file name 'lgbm.pkl' is not a plain <name>.onnx"),
        ("models/churn/incoming/ lgbm.onnx", "the file name ' lgbm.onnx' is not a plain <name>.onnx"),
        ("models/_x/incoming/lgbm.onnx", "'_x' is not a valid model name (lowercase letters, digits and '-')"),
        ("models/churn/incoming/l\u202egbm.onnx", "the key contains the control or invisible character U+202E"),
        ("datasets/churn/lgbm.onnx", "the key is not under models/"),
        ("models/churn/incoming/" + "a" * 1100 + ".onnx", "the key is longer than 1024 bytes"),
    ],
)
def test_incoming_key_problem(key: str, problem: str | None) -> None:
    from mlops.layout import incoming_key_problem

    assert incoming_key_problem(key) == problem


def test_drops_from_s3_event_decodes_keys_and_keeps_the_uploader() -> None:
    from mlops.imports.drops import drops_from_s3_event

    event = {
        "Records": [
            {
                "eventTime": "2026-12-03T04:00:00.000Z",
                "userIdentity": {"principalId": "AWS:AROA:alice"},
                "s3": {"bucket": {"name": "data"}, "object": {"key": "models/churn/incoming/my+model%281%29.onnx"}},
            }
        ]
    }
    assert drops_from_s3_event(event) == [
        ImportDrop(
            bucket="data",
            key="models/churn/incoming/my model(1).onnx",
            version_id=None,
            uploaded_by="AWS:AROA:alice",
            uploaded_at="2026-12-03T04:00:00.000Z",
        )
    ]
    with pytest.raises(BadRequestError, match=r"Records\[0\] names no S3 bucket and key"):
        drops_from_s3_event({"Records": [{"s3": {"bucket": {"name": "data"}}}]})
