"""The whole story on one machine, told step by step against local mode.

Every step talks to local mode the way a user would: boto3 for S3 and SNS/SQS, HTTPS for the
API (API key for predictions, SigV4 for the admin routes). A step that did not happen fails the
demo; the summary lists each step, its time and its key numbers.
"""

from __future__ import annotations

import io
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import numpy as np
import requests  # requirements/dev.txt: local mode runs where the dev requirements are installed

from mlops_local.bad_models import constant_classifier_graph
from mlops_local.client import ApiClient
from mlops_local.demo_batch import score_batch_file
from mlops_local.functions import Invocation
from mlops_local.runtime import Endpoints, LocalRuntime
from mlops_local.sample_data import churn_dataset, churn_features, records

MODEL = "churn"
FIRST_EXPORT_ROWS = 2_000  # version 1's dataset: small, so the full export makes a better model
# labelled traffic for the retraining story: a tenth of the export (at least 2,000), so the new evidence
# weighs in the retrained model yet stays below the dataset gate's label-flip threshold
LABELLED_TRAFFIC_SHARE = 10
# local mode only: the quality join waits this long (deployed: 120 s settle, 600 s capture lag) so the
# demo's labels are joined within a minute of their predictions
DEMO_QUALITY_WAIT_SECONDS = "1"


class StepFailed(Exception):
    pass


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    ok: bool = False
    details: str = ""


@dataclass
class Story:
    steps: list[Step] = field(default_factory=list)
    out: Any = sys.stdout

    def run(self, name: str, action: Callable[[], str]) -> str:
        step = Step(name)
        self.steps.append(step)
        self.out.write(f"  .. {name}\n")
        self.out.flush()
        started = time.perf_counter()
        try:
            step.details = action()
            step.ok = True
        except Exception as error:
            step.details = f"FAILED: {error}"
        step.seconds = time.perf_counter() - started
        mark = "ok" if step.ok else "!!"
        self.out.write(f"  {mark} {name} ({step.seconds:.1f} s): {step.details}\n")
        self.out.flush()
        return step.details

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def summary(self) -> str:
        width = max(len(s.name) for s in self.steps)
        lines = [f"{'step':<{width}}  {'seconds':>8}  result", f"{'-' * width}  {'-' * 8}  {'-' * 40}"]
        for step in self.steps:
            lines.append(f"{step.name:<{width}}  {step.seconds:8.1f}  {'ok' if step.ok else 'FAILED'}: {step.details}")
        return "\n".join(lines)


class InvocationWatch:
    """Waits for a function to finish an invocation (the runtime reports each one)."""

    def __init__(self, runtime: LocalRuntime) -> None:
        self.seen: list[Invocation] = []
        self._changed = threading.Condition()
        runtime.invocation_listeners.append(self._record)

    def _record(self, invocation: Invocation) -> None:
        with self._changed:
            self.seen.append(invocation)
            self._changed.notify_all()

    def mark(self) -> int:
        with self._changed:
            return len(self.seen)

    def wait_for(self, function: str, since: int, timeout: float = 300.0) -> Invocation:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for invocation in self.seen[since:]:
                    if invocation.function == function:
                        if not invocation.ok:
                            raise StepFailed(f"{function} failed: {invocation.error}")
                        return invocation
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StepFailed(f"{function} did not run within {timeout:.0f} s")
                self._changed.wait(remaining)


class Demo:
    def __init__(self, runtime: LocalRuntime, endpoints: Endpoints, rows: int, out: Any = sys.stdout) -> None:
        self.runtime = runtime
        self.endpoints = endpoints
        self.rows = rows
        self.story = Story(out=out)
        self.watch = InvocationWatch(runtime)
        session = boto3.session.Session(
            aws_access_key_id=endpoints.access_key_id,
            aws_secret_access_key=endpoints.secret_access_key,
            region_name=endpoints.region,
        )
        self.s3 = session.client("s3", endpoint_url=endpoints.aws_endpoint_url)
        self.sqs = session.client("sqs", endpoint_url=endpoints.aws_endpoint_url)
        self.sns = session.client("sns", endpoint_url=endpoints.aws_endpoint_url)
        self.api = ApiClient(
            endpoints.api_url,
            ca_bundle=endpoints.ca_bundle,
            api_key=endpoints.api_key,
            access_key=endpoints.access_key_id,
            secret_key=endpoints.secret_access_key,
            region=endpoints.region,
        )
        self.data_bucket = endpoints.outputs["DataBucketName"]
        self.numbers: dict[str, Any] = {}

    # --- the story --------------------------------------------------------------------------

    def run(self) -> bool:
        run = self.story.run
        run("subscribe a queue to the alarm topic", self.subscribe_to_alarms)
        run("declare the sample model", self.declare_model)
        # The first export is small: version 2, trained on the full one, is better on the same rows
        # (promotion compares both on the candidate's holdout, not each on its own).
        first_rows = min(self.rows, FIRST_EXPORT_ROWS)
        first = run(
            f"drop a first export ({first_rows:,} rows) into S3",
            lambda: self.drop_dataset("churn-2026-11.csv", 0.12, rows=first_rows),
        )
        del first
        run("validated", lambda: self.await_stage("validate_dataset"))
        run("trained", lambda: self.await_stage("train_model"))
        run("registered and promoted", lambda: self.await_production(1))
        run("HTTPS predictions (API key)", self.predict)
        run("a request without the API key is refused", self.predict_without_key)
        run("a batch file is scored (predictions, rejects, summary)", lambda: score_batch_file(self))
        run("drifted traffic", self.send_drifted_traffic)
        run("drift check", self.check_drift)
        run("alarm notification", self.await_alarm)
        run("a bad dataset is quarantined", self.quarantine_bad_dataset)
        run("a label-flipped dataset is held for review", self.hold_suspicious_dataset)
        run("a reviewer rejects it through the API", self.reject_held_dataset)
        run(
            f"the full export ({self.rows:,} rows) trains on the managed engine's path and promotes version 2",
            self.promote_better,
        )
        run("served predictions get their labels (HTTPS feedback, API key)", self.send_labelled_traffic)
        run("the quality check finds live quality below the minimum", self.check_quality)
        run("the quality alarm triggers a retraining", self.await_retraining)
        run("the retrained version passes the gates and is promoted", self.await_retrained)
        run("a retraining asked through the API waits for the cooldown", self.ask_retraining)
        run("rollback to version 1", self.rollback)
        run("a weaker model waits as a candidate", self.weaker_candidate)
        run("an approver promotes the candidate through the API", self.approve_and_promote)
        run("the audit trail through the API", self.audit_trail)
        run("a canary of a deliberately bad version rolls back by itself", self.canary_rolls_back)
        return self.story.ok

    def subscribe_to_alarms(self) -> str:
        topic = self.endpoints.outputs["AlarmTopicArn"]
        queue_url = self.sqs.create_queue(QueueName="demo-alarm-inbox")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        self.inbox = queue_url
        return f"queue demo-alarm-inbox subscribed to {topic.rsplit(':', 1)[-1]}"

    def declare_model(self) -> str:
        body = self.s3.get_object(Bucket=self.data_bucket, Key=f"contracts/{MODEL}.json")["Body"].read()
        contract = json.loads(body)
        return (
            f"contract '{MODEL}': {len(contract['features'])} features, {contract['estimator']['name']}, "
            f"{contract['metric']['name']} >= {contract['metric']['minimum']}"
        )

    def drop_dataset(self, name: str, label_noise: float, *, seed: int = 7, rows: int | None = None) -> str:
        frame = churn_dataset(rows or self.rows, seed=seed, label_noise=label_noise)
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        payload = buffer.getvalue().encode()
        self._mark = self.watch.mark()
        self._dropped = time.perf_counter()
        self.s3.put_object(Bucket=self.data_bucket, Key=f"datasets/{MODEL}/{name}", Body=payload)
        return f"s3://{self.data_bucket}/datasets/{MODEL}/{name} ({len(payload) / 1e6:.1f} MB)"

    def await_stage(self, function: str) -> str:
        invocation = self.watch.wait_for(function, self._mark)
        return f"{function} ran in {invocation.duration_ms / 1000:.1f} s"

    def await_production(self, version: int, timeout: float = 300.0) -> str:
        self.watch.wait_for("register_model", self._mark, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self._model()
            if model and model.get("production_version") == version:
                elapsed = time.perf_counter() - self._dropped
                self.numbers[f"drop_to_production_v{version}"] = elapsed
                versions = self.api.admin("GET", f"/models/{MODEL}/versions").body
                metric = _metric_of(versions, version)
                return f"version {version} in production, {metric}; {elapsed:.1f} s from drop to production"
            time.sleep(0.5)
        raise StepFailed(f"version {version} never reached production: {self._model()}")

    def predict(self) -> str:
        sample = records(churn_features(5, seed=99))
        response = self.api.predict(MODEL, sample)
        if response.status != 200:
            raise StepFailed(f"HTTP {response.status}: {response.body}")
        first = response.body["predictions"][0]
        latencies = []
        for _ in range(20):
            started = time.perf_counter()
            self.api.predict(MODEL, sample[:1])
            latencies.append((time.perf_counter() - started) * 1000)
        latencies.sort()
        return (
            f"5 records -> version {response.body['version']}, first: {json.dumps(first)}; "
            f"HTTPS round trip p50 {latencies[len(latencies) // 2]:.1f} ms"
        )

    def predict_without_key(self) -> str:
        response = self.api.predict(MODEL, records(churn_features(1, seed=5)), api_key="")
        if response.status != 403:
            raise StepFailed(f"expected 403, got {response.status}")
        bad = self.api.predict(MODEL, [{"tenure_months": "abc"}])
        if bad.status != 400:
            raise StepFailed(f"expected 400 for a bad record, got {bad.status}")
        return f"no key -> 403; bad record -> 400 ({bad.body.get('message', bad.body)})"

    def send_drifted_traffic(self) -> str:
        drifted = records(churn_features(1_000, seed=123, drift=1.0))
        for start in range(0, len(drifted), 100):
            response = self.api.predict(MODEL, drifted[start : start + 100])
            if response.status != 200:
                raise StepFailed(f"HTTP {response.status}: {response.body}")
        return f"{len(drifted)} records with a shifted customer base, in batches of 100"

    def check_drift(self) -> str:
        drift_function = self.runtime.runner.by_name("detect_drift")
        settle = float(drift_function.environment.get("DRIFT_SETTLE_SECONDS", "0"))
        time.sleep(settle + 1)  # the drift window only takes captures older than this
        rule = next(iter(self.runtime.triggers.schedules))
        if not all(self.runtime.triggers.fire(rule)):
            raise StepFailed("the drift function failed")
        points = [p for p in self.runtime.metrics.points if p.name == "DriftScore"]
        if not points:
            raise StepFailed("no DriftScore metric was emitted")
        score = points[-1].value
        self.numbers["drift_score"] = score
        dims = dict(points[-1].dimensions)
        bucket = drift_function.environment["ARTIFACT_BUCKET"]
        listed = self.s3.list_objects_v2(Bucket=bucket, Prefix=f"monitoring/{MODEL}/reports/").get("Contents", [])
        newest = max((item["Key"] for item in listed if item["Key"].endswith(".json")), default=None)
        if newest is None:
            raise StepFailed("the drift function stored no result")
        result = json.loads(self.s3.get_object(Bucket=bucket, Key=newest)["Body"].read())
        drifted = [feature["name"] for feature in result["features"] if feature["drifted"]]
        self.numbers["drifted_features"] = drifted
        return (
            f"DriftScore {score:.2f} (max PSI over features) with dimensions {dims}; "
            f"{len(drifted)} of {len(result['features'])} features drifted ({', '.join(drifted) or 'none'}) "
            f"in {result['window']['rows']:,} rows; page {result['report_key']}"
        )

    def await_alarm(self, timeout: float = 30.0) -> str:
        """The two messages a subscriber gets: CloudWatch's (the model's composite alarm) and the drift
        notice a person reads (what drifted, by how much, the report's link), printed in full."""
        alarm: dict[str, Any] | None = None
        notice: tuple[str, str] | None = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and (alarm is None or notice is None):
            messages = self.sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in messages.get("Messages", []):
                envelope = json.loads(message["Body"])
                subject, text = envelope.get("Subject") or "", envelope.get("Message", "")
                if subject.startswith(("Drift:", "Data quality:")) and f" {MODEL} v" in subject:
                    notice = notice or (subject, text)
                    continue
                try:  # the topic also carries production-change and dataset notices, in plain text
                    state = json.loads(text)
                except ValueError:
                    continue
                if isinstance(state, dict) and state.get("NewStateValue") == "ALARM" and alarm is None:
                    alarm = state
        if alarm is None:
            raise StepFailed("no ALARM notification reached the subscribed queue")
        if notice is None:
            raise StepFailed("no drift notice reached the subscribed queue")
        subject, text = notice
        self.story.out.write(f"     Subject: {subject}\n" + "".join(f"     | {line}\n" for line in text.splitlines()))
        return (
            f"SNS -> queue: {alarm['AlarmName']} is ALARM ({alarm['NewStateReason']}); "
            f"the drift notice '{subject}' (above); {self.open_report(text)}"
        )

    def open_report(self, notice: str) -> str:
        """Follow the notice's link as a reader would: a SigV4-signed GET of the report page."""
        link = next(
            (line.removeprefix("Report: ") for line in notice.splitlines() if line.startswith("Report: https")), ""
        )
        if not link.startswith(self.api.api_url):
            raise StepFailed(f"the notice links no report on this API: {link or 'no link'}")
        page = self.api.admin("GET", link.removeprefix(self.api.api_url))
        content_type = page.headers.get("Content-Type", "")
        if page.status != 200 or not content_type.startswith("text/html") or "<svg" not in str(page.body):
            raise StepFailed(f"the report link answered HTTP {page.status} {content_type}")
        return f"report page served: HTTP 200 {content_type}, {len(str(page.body).encode()) // 1024} KB"

    def quarantine_bad_dataset(self) -> str:
        frame = churn_dataset(500, seed=3).drop(columns=["region"])
        frame["tenure_months"] = frame["tenure_months"].astype(object)
        frame.loc[4, "tenure_months"] = "twelve"
        key = f"datasets/{MODEL}/bad-export.csv"
        mark = self.watch.mark()
        self.s3.put_object(Bucket=self.data_bucket, Key=key, Body=frame.to_csv(index=False).encode())
        self.watch.wait_for("validate_dataset", mark)
        quarantined = self.s3.list_objects_v2(Bucket=self.data_bucket, Prefix=f"quarantine/{MODEL}/").get(
            "Contents", []
        )
        if not any(item["Key"].endswith("bad-export.csv") for item in quarantined):
            raise StepFailed("the bad dataset is not under quarantine/")
        # this upload's JSON report: reports/ also holds .txt summaries, and LastModified ties at one second
        reports = self.s3.list_objects_v2(Bucket=self.data_bucket, Prefix=f"reports/{MODEL}/bad-export.csv-").get(
            "Contents", []
        )
        newest = max((item for item in reports if item["Key"].endswith(".json")), key=lambda item: item["LastModified"])
        report = json.loads(self.s3.get_object(Bucket=self.data_bucket, Key=newest["Key"])["Body"].read())
        failed = [c for c in report.get("checks", []) if not c.get("passed", True)]
        problems = "; ".join(f"{c.get('name')}: {c.get('details') or c.get('message')}" for c in failed[:3])
        return f"moved to quarantine/, report {newest['Key']}: {problems}"

    def hold_suspicious_dataset(self) -> str:
        frame = churn_dataset(min(self.rows, 20_000), seed=31, label_noise=0.02)
        frame["churned"] = frame["churned"].map({"yes": "no", "no": "yes"})  # poisoned: every label flipped
        key = f"datasets/{MODEL}/partner-feed.csv"
        mark = self.watch.mark()
        self.s3.put_object(Bucket=self.data_bucket, Key=key, Body=frame.to_csv(index=False).encode())
        self.watch.wait_for("validate_dataset", mark)
        held = _items(self.api.admin("GET", f"/models/{MODEL}/datasets?state=held").body)
        entry = next((e for e in held if e.get("key") == key), None)
        if entry is None:
            raise StepFailed(f"{key} is not held; held datasets: {[e.get('key') for e in held]}")
        if self.watch.seen[mark:] and any(i.function == "train_model" for i in self.watch.seen[mark:]):
            raise StepFailed("a held dataset was trained on")
        self._held = entry
        summary = self.s3.get_object(Bucket=self.data_bucket, Key=entry["summary_key"])["Body"].read().decode()
        failed = [line.strip() for line in summary.splitlines() if "FAIL" in line.upper()][:2]
        return f"held, not trained on; report {entry['report_key']}: {' | '.join(failed) or '; '.join(entry['reasons'][:2])}"

    def reject_held_dataset(self) -> str:
        dataset_id = self._held["dataset_id"]
        response = self.api.admin(
            "POST",
            f"/models/{MODEL}/datasets/{dataset_id}/review",
            {"decision": "reject", "reason": "demo: labels contradict the production model"},
        )
        if response.status != 200 or response.body.get("state") != "quarantined":
            raise StepFailed(f"HTTP {response.status}: {response.body}")
        return f"{dataset_id} quarantined by the reviewer (audited in the dataset ledger) at {response.body.get('quarantine_key')}"

    def promote_better(self) -> str:
        self.drop_dataset("churn-2026-12.csv", 0.02, seed=11)
        self.watch.wait_for("train_model", self._mark)
        promoted = self.await_production(2)
        return f"{promoted}; {self.trained_where(2)}; answering after {self.await_serving(2):.1f} s"

    def trained_where(self, version: int) -> str:
        """Where a version trained, from its lineage: the demo lowers the managed engine's threshold to
        the full export's rows, so that export takes the path a dataset past Lambda's limits takes."""
        summary = self.api.admin("GET", f"/models/{MODEL}/versions/{version}").body
        trained_on = (summary.get("lineage") or {}).get("trained_on") or {}
        engine = trained_on.get("engine")
        if engine is None:
            raise StepFailed(f"version {version}'s lineage does not say where it trained: {summary.get('lineage')}")
        self.numbers[f"v{version}_engine"] = engine
        if engine == "lambda":
            return f"trained in the train_model function ({trained_on.get('compute')})"
        return (
            f"trained on the managed engine's path ({engine} {trained_on.get('compute')}, job "
            f"{trained_on.get('job_id')}, run in-process by local mode's state machine)"
        )

    def await_serving(self, version: int) -> float:
        """Seconds until predictions come from `version`: warm containers re-read the production
        pointer every MODEL_REFRESH_SECONDS, so a change is served without a redeploy."""
        refresh = float(self.runtime.runner.by_name("predict").environment.get("MODEL_REFRESH_SECONDS", "30"))
        started = time.perf_counter()
        deadline = time.monotonic() + refresh + 5
        sample = records(churn_features(1, seed=8))
        while time.monotonic() < deadline:
            if self.api.predict(MODEL, sample).body.get("version") == version:
                return time.perf_counter() - started
            time.sleep(0.25)
        raise StepFailed(f"predictions did not come from version {version} within {refresh + 5:.0f} s")

    def send_labelled_traffic(self) -> str:
        """Predictions for a shifted customer base, then their outcomes through the feedback route: a
        competitor opened in the east, so eastern customers churn whatever the model says."""
        count = max(2_000, self.rows // LABELLED_TRAFFIC_SHARE)
        features = churn_features(count, seed=123, drift=0.5)
        rng = np.random.default_rng(5)
        east = features["region"].to_numpy() == "east"
        churned = np.where(east, rng.random(count) < 0.95, rng.random(count) < 0.05)
        ids: list[str] = []
        wrong = 0
        for start in range(0, count, 100):
            response = self.api.predict(MODEL, records(features.iloc[start : start + 100]))
            if response.status != 200:
                raise StepFailed(f"predict: HTTP {response.status}: {response.body}")
            for answer, truth in zip(response.body["predictions"], churned[start : start + 100], strict=True):
                ids.append(answer["prediction_id"])
                wrong += (answer["label"] == "yes") != bool(truth)
        labels = [{"prediction_id": i, "label": "yes" if t else "no"} for i, t in zip(ids, churned, strict=True)]
        for start in range(0, len(labels), 1_000):
            response = self.api.request(
                "POST",
                f"/models/{MODEL}/feedback",
                {"labels": labels[start : start + 1_000]},
                headers={"x-api-key": self.endpoints.api_key},
            )
            if response.status != 200:
                raise StepFailed(f"feedback: HTTP {response.status}: {response.body}")
        self._last_answered = time.time()
        return (
            f"{count:,} predictions for a shifted customer base (a competitor in the east), then {len(labels):,} "
            f"outcomes via POST /models/{MODEL}/feedback: production v2 got {wrong / count:.0%} of them wrong"
        )

    def check_quality(self) -> str:
        quality = self.runtime.runner.by_name("evaluate_quality")
        for name in ("QUALITY_SETTLE_SECONDS", "QUALITY_CAPTURE_LAG_SECONDS"):
            quality.environment[name] = DEMO_QUALITY_WAIT_SECONDS
        # a minute's labels are joined once the minute is over (plus the capture lag)
        ready = (self._last_answered // 60 + 1) * 60 + float(DEMO_QUALITY_WAIT_SECONDS) + 1
        time.sleep(max(0.0, ready - time.time()))
        self._mark = self.watch.mark()
        rule = next(rule for rule in self.runtime.triggers.schedules if "QualitySchedule" in rule)
        if not all(self.runtime.triggers.fire(rule)):
            raise StepFailed("the quality function failed")
        answer = self.api.admin("GET", f"/models/{MODEL}/quality")
        latest = answer.body.get("latest") if isinstance(answer.body, dict) else None
        if answer.status != 200 or not latest:
            raise StepFailed(f"GET /models/{MODEL}/quality: HTTP {answer.status}: {answer.body}")
        verdict = latest.get("verdict") or {}
        if not (verdict.get("below_minimum") or verdict.get("below_holdout")):
            raise StepFailed(f"live quality was not judged below: {latest.get('status')} {verdict}")
        self.numbers["live_quality"] = verdict["live"]
        joined = (latest.get("production") or {}).get("labelled_rows")
        return (
            f"v{latest['version']}: live {verdict['metric']} {verdict['live']:.3f} on {joined:,} labelled predictions, "
            f"minimum {verdict['minimum']}, holdout {verdict['holdout']:.3f} (local mode joins after "
            f"{DEMO_QUALITY_WAIT_SECONDS} s instead of the deployed capture lag)"
        )

    def await_retraining(self, timeout: float = 120.0) -> str:
        name = f"-model-{MODEL}-quality"
        deadline = time.monotonic() + timeout
        change = None
        while change is None and time.monotonic() < deadline:
            change = next((c for c in self.runtime.alarms.changes if c.alarm.endswith(name) and c.new == "ALARM"), None)
            time.sleep(0.2)
        if change is None:
            raise StepFailed(f"the quality alarm (*{name}) never entered ALARM")
        self._quality_alarm_at = change.at.timestamp()
        invocation = self.watch.wait_for("retrain_model", self._mark, timeout)
        result = invocation.result or {}
        if not result.get("started"):
            raise StepFailed(f"retrain_model did not start a retraining: {result}")
        self._retrain_key = result["dataset_key"]
        started = next(
            e
            for e in reversed(_items(self.api.admin("GET", f"/models/{MODEL}/audit").body))
            if e.get("action") == "retrain_started"
        )
        after = started.get("after", {})
        return (
            f"{change.alarm} -> ALARM; CloudWatch's state change on the default bus -> retrain_model: "
            f"{after.get('base_rows', 0):,} rows of the last accepted dataset + {after.get('traffic_rows', 0):,} "
            f"labelled predictions -> s3://{self.data_bucket}/{self._retrain_key} (gates: {after.get('gates')})"
        )

    def await_retrained(self, timeout: float = 300.0) -> str:
        self.watch.wait_for("register_model", self._mark, timeout)
        model = self._model() or {}
        version = model.get("latest_version")
        if model.get("production_version") != version or version != 3:
            versions = _items(self.api.admin("GET", f"/models/{MODEL}/versions").body)
            newest = max(versions, key=lambda v: v.get("version", 0), default={})
            raise StepFailed(f"the retrained version was not promoted: {newest.get('status')} {newest}")
        pickup = self.await_serving(version)
        elapsed = time.time() - self._quality_alarm_at
        self.numbers["quality_alarm_to_serving_seconds"] = elapsed
        events = _items(self.api.admin("GET", f"/models/{MODEL}/audit").body)
        promoted = next((e for e in reversed(events) if e.get("action") == "promoted"), {})
        why = [
            f"{e['action']} ({e.get('actor', '').rsplit('/', 1)[-1]}: {e.get('reason', '')[:80]})"
            for e in events
            if str(e.get("action", "")).startswith("retrain")
        ]
        return (
            f"version {version} in production ({promoted.get('reason', '')[:300]}); answering after {pickup:.1f} s; "
            f"{elapsed:.1f} s from the quality alarm to the retrained version serving; audit: {'; '.join(why)}"
        )

    def ask_retraining(self) -> str:
        mark = self.watch.mark()
        response = self.api.admin("POST", f"/models/{MODEL}/retrain", {"reason": "demo: the east campaign ended"})
        if response.status != 202:
            raise StepFailed(f"HTTP {response.status}: {response.body}")
        result = self.watch.wait_for("retrain_model", mark, 60).result or {}
        if result.get("started") or not str(result.get("reason", "")).startswith("cooldown"):
            raise StepFailed(f"expected the cooldown to hold the request: {result}")
        return f"POST /models/{MODEL}/retrain -> 202 (audited retrain_requested); retrain_model: {result['reason']}"

    def rollback(self) -> str:
        response = self.api.admin(
            "POST", f"/models/{MODEL}/rollback", {"reason": "demo: roll back to the first version", "to_version": 1}
        )
        if response.status != 200:
            raise StepFailed(f"HTTP {response.status}: {response.body}")
        model = self._model()
        if not model or model.get("production_version") != 1:
            raise StepFailed(f"production is {model}")
        pickup = self.await_serving(1)
        events = _items(self.api.admin("GET", f"/models/{MODEL}/audit").body)
        return f"production back to version 1, answering after {pickup:.1f} s; audit trail has {len(events)} events"

    def weaker_candidate(self) -> str:
        self.drop_dataset("churn-2027-01.csv", 0.3, seed=21)
        self.watch.wait_for("register_model", self._mark)
        versions = self.api.admin("GET", f"/models/{MODEL}/versions").body
        newest = max(_items(versions), key=lambda item: item.get("version", 0))
        model = self._model() or {}
        if newest.get("status") != "candidate" or model.get("production_version") != 1:
            raise StepFailed(f"expected a candidate beside production v1, got {newest.get('status')} / {model}")
        return (
            f"version {newest['version']} is a candidate: {newest.get('promotion_decision') or newest.get('decision')}"
        )

    def approve_and_promote(self) -> str:
        version = (self._model() or {}).get("latest_version")
        before_promotion = datetime.now(UTC)
        time.sleep(0.01)
        reason = {"reason": "demo: reviewed the holdout report, promoting by hand"}
        for action in ("approve", "promote"):
            response = self.api.admin("POST", f"/models/{MODEL}/versions/{version}/{action}", reason)
            if response.status != 200:
                raise StepFailed(f"{action}: HTTP {response.status}: {response.body}")
        self._before_promotion = before_promotion
        pickup = self.await_serving(version)
        return f"approve + promote (SigV4, audited): version {version} in production, answering after {pickup:.1f} s"

    def audit_trail(self) -> str:
        events = _items(self.api.admin("GET", f"/models/{MODEL}/audit").body)
        actions = [f"{e.get('action')}" + (f" v{e['version']}" if e.get("version") else "") for e in events]
        at = self._before_promotion.isoformat()
        served = self.api.admin("GET", f"/models/{MODEL}/served?at={at.replace('+00:00', 'Z')}")
        if served.status != 200:
            raise StepFailed(f"served-at: HTTP {served.status}: {served.body}")
        was = served.body.get("to_version") if isinstance(served.body, dict) else served.body
        return f"{len(events)} events: {', '.join(actions)}; production just before the manual promotion was v{was}"

    def canary_rolls_back(self, timeout: float = 120.0) -> str:
        """An always-"yes" graph, imported and approved, gets half the traffic as a canary; its output-shift
        alarm (local mode evaluates the template's alarms) -> the rule on the default bus -> control_canary
        ends the canary, audited with the alarm; production answers everything again."""
        contract = json.loads(self.s3.get_object(Bucket=self.data_bucket, Key=f"contracts/{MODEL}.json")["Body"].read())
        asked = self.api.admin(
            "POST", f"/models/{MODEL}/imports", {"file_name": "always-yes.onnx", "reason": "demo: a bad challenger"}
        )
        if asked.status != 200:
            raise StepFailed(f"imports: HTTP {asked.status}: {asked.body}")
        mark = self.watch.mark()
        put = requests.put(asked.body["upload_url"], data=constant_classifier_graph(contract, "yes"), timeout=120)
        if put.status_code != 200:
            raise StepFailed(f"upload: HTTP {put.status_code}: {put.text[:200]}")
        self.watch.wait_for("register_model", mark, timeout)
        model = self._model() or {}
        bad, champion = model.get("latest_version"), model.get("production_version")
        reason = {"reason": "demo: let a few requests decide"}
        approved = self.api.admin("POST", f"/models/{MODEL}/versions/{bad}/approve", reason)
        if approved.status != 200:
            raise StepFailed(f"approve v{bad}: HTTP {approved.status}: {approved.body}")
        body = {
            "version": bad,
            "share": 0.5,
            "bake_minutes": 60,
            "reason": "demo: a canary of the imported v" + str(bad),
        }
        started = self.api.admin("POST", f"/models/{MODEL}/canary", body)
        if started.status != 200:
            raise StepFailed(f"canary: HTTP {started.status}: {started.body}")
        # a pin answers from the named version whatever the canary (a request may choose what answers)
        sample = records(churn_features(200, seed=31))
        pinned = self.api.request(
            "POST",
            f"/models/{MODEL}/predict?version={champion}",
            {"records": sample[:1]},
            headers={"x-api-key": self.endpoints.api_key},
        )
        if pinned.status != 200 or pinned.body.get("variant") != "pinned":
            raise StepFailed(f"pinned request: HTTP {pinned.status}: {pinned.body}")
        began = time.monotonic()
        answered: dict[str, int] = {}
        rolled_back = None
        while rolled_back is None and time.monotonic() - began < timeout:
            for record in sample[:20]:
                response = self.api.predict(MODEL, [record])
                if response.status != 200:
                    raise StepFailed(f"predict: HTTP {response.status}: {response.body}")
                variant = response.body.get("variant", "production")
                answered[variant] = answered.get(variant, 0) + 1
            events = _items(self.api.admin("GET", f"/models/{MODEL}/audit").body)
            rolled_back = next((e for e in reversed(events) if e.get("action") == "canary_rolled_back"), None)
            time.sleep(0.2)
        if rolled_back is None:
            raise StepFailed(f"the canary was not rolled back within {timeout:.0f} s; answers by variant {answered}")
        seconds = time.monotonic() - began
        after = self._model() or {}
        if after.get("canary") or after.get("production_version") != champion:
            raise StepFailed(f"after the rollback: {after}")
        self.numbers["canary_rollback_seconds"] = seconds
        served_alone = self.await_without_canary(sample[:20])
        return (
            f"v{bad} (always 'yes') imported, approved, canary at 50 %: answers {answered}; "
            f"{rolled_back['actor']} -> control_canary: canary_rolled_back after {seconds:.1f} s "
            f"({rolled_back['reason'][:120]}); production v{champion} untouched, answering every request "
            f"{served_alone:.1f} s later"
        )

    def await_without_canary(self, sample: list[dict[str, Any]]) -> float:
        """Seconds until no answer comes from a canary: each warm predict container re-reads the pointer
        (and the canary beside it) every MODEL_REFRESH_SECONDS, so the end of a canary is followed
        without a redeploy, container by container."""
        refresh = float(self.runtime.runner.by_name("predict").environment.get("MODEL_REFRESH_SECONDS", "30"))
        started = time.perf_counter()
        deadline = time.monotonic() + refresh + 5
        while time.monotonic() < deadline:
            variants = {self.api.predict(MODEL, [record]).body.get("variant") for record in sample}
            if "canary" not in variants:
                return time.perf_counter() - started
            time.sleep(0.25)
        raise StepFailed(f"predictions still came from the canary {refresh + 5:.0f} s after its rollback")

    def _model(self) -> dict[str, Any] | None:
        return next((m for m in _items(self.api.admin("GET", "/models").body) if m.get("name") == MODEL), None)


def _items(body: Any) -> list[dict[str, Any]]:
    """A listing's items, whether the API returns a bare list or wraps it."""
    if isinstance(body, dict):
        return next((v for v in body.values() if isinstance(v, list)), [])
    return body if isinstance(body, list) else []


def _metric_of(versions: Any, version: int) -> str:
    for item in _items(versions):
        if item.get("version") == version:
            name = item.get("metric_name", "metric")
            return f"holdout {name} {item.get('metrics', {}).get(name, float('nan')):.3f}"
    return "metrics unavailable"


def managed_training_threshold(rows: int) -> int:
    """The demo's lowered threshold of the managed engine: the full export (and anything as big) takes
    the path a dataset past Lambda's limits takes in AWS; the first export stays in train_model."""
    return max(rows, FIRST_EXPORT_ROWS + 1)


def run_demo(rows: int, keep_running: bool, out: Any = sys.stdout) -> int:
    out.write("Starting local mode (synthesizing the CDK app, creating its resources on the local AWS stand-in)...\n")
    # the story starts from nothing and leaves `mlops local up`'s saved state alone
    runtime = LocalRuntime(persist=False, managed_training_min_rows=managed_training_threshold(rows))
    started = time.perf_counter()
    try:
        endpoints = runtime.start()
    except Exception as error:
        out.write(f"local mode did not start: {error}\n")
        runtime.stop()
        return 1
    out.write(f"  ok local mode up ({time.perf_counter() - started:.1f} s); logs in {endpoints.log_dir}\n")
    demo = Demo(runtime, endpoints, rows, out)
    try:
        ok = demo.run()
        out.write("\nSummary\n" + demo.story.summary() + "\n")
        if "quality_alarm_to_serving_seconds" in demo.numbers:
            seconds = demo.numbers["quality_alarm_to_serving_seconds"]
            out.write(f"\nFrom the quality alarm to the retrained version serving: {seconds:.1f} s ({rows:,} rows)\n")
        out.write(f"\n{'All steps happened.' if ok else 'Some steps did not happen.'}\n")
        if keep_running:
            from mlops_local.cli import print_usage

            print_usage(endpoints, out)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return 0 if ok else 1
    finally:
        runtime.stop()
