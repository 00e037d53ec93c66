"""`mlops models ...`: the registry through the models API (SigV4-signed admin calls), as tables."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from mlops_local.cli.common import checked, console, resolve

app = typer.Typer(help="Registered models: list, versions, compare, approve, reject, promote, rollback.")

Model = Annotated[str, typer.Argument(help="the model's name")]
Version = Annotated[int, typer.Argument(help="a version number", min=1)]
Reason = Annotated[str, typer.Option(help="why (recorded in the audit trail)")]


@app.command("list")
def list_models(ctx: typer.Context) -> int:
    """Registered models with their latest and production versions."""
    models = checked(resolve(ctx).api().admin("GET", "/models"), "listing models")
    table = Table("model", "latest", "production", "aliases", "updated", title="models")
    for model in models:
        aliases = ", ".join(f"{alias}={version}" for alias, version in sorted(model.get("aliases", {}).items()))
        table.add_row(
            model["name"], str(model["latest_version"]), _or_dash(model.get("production_version")), aliases,
            model["updated_at"][:19],
        )  # fmt: skip
    console().print(table if models else "no models registered yet: `mlops datasets upload FILE --model M`")
    return 0


@app.command()
def versions(ctx: typer.Context, model: Model) -> int:
    """A model's versions: status, primary metric, promotion decision, training data."""
    found = checked(resolve(ctx).api().admin("GET", f"/models/{model}/versions"), f"listing {model}'s versions")
    table = Table("version", "status", "metric", "created", "training rows", "promotion decision", title=model)
    for version in found:
        metric = version["metric_name"]
        value = version["metrics"].get(metric)
        table.add_row(
            str(version["version"]), version["status"], f"{metric} {_number(value)}", version["created_at"][:19],
            _or_dash(version["lineage"].get("training_rows")), escape(version.get("promotion_decision") or ""),
        )  # fmt: skip
    console().print(table)
    return 0


@app.command()
def compare(ctx: typer.Context, model: Model, a: Version, b: Version) -> int:
    """Two versions side by side: metrics (b - a), params, lineage, schema compatibility, training-data drift."""
    found = checked(
        resolve(ctx).api().admin("GET", f"/models/{model}/compare?a={a}&b={b}"), f"comparing {model} {a} and {b}"
    )
    out = console()
    metrics = Table("metric", f"v{a}", f"v{b}", "b - a", title=f"{model}: v{a} vs v{b}")
    for name, pair in sorted(found.get("metrics", {}).items()):
        primary = " (primary)" if name == found.get("primary_metric") else ""
        metrics.add_row(name + primary, _number(pair.get("a")), _number(pair.get("b")), _number(pair.get("delta")))
    out.print(metrics)
    better = found.get("better")
    out.print(
        f"better: {'v' + str(better) if better else 'undecided'} ({found.get('better_basis')}); "
        f"same dataset: {found.get('same_dataset')}; same contract: {found.get('same_contract')}"
    )
    differing = Table("param", f"v{a}", f"v{b}", title="params that differ")
    for name, pair in sorted(found.get("params", {}).items()):
        if not pair.get("same"):
            differing.add_row(name, str(pair.get("a")), str(pair.get("b")))
    if differing.row_count:
        out.print(differing)
    for name in ("schema_compatibility", "training_data_drift"):
        if found.get(name):
            out.print(f"{name.replace('_', ' ')}: {_brief(found[name])}", markup=False)
    return 0


@app.command()
def approve(ctx: typer.Context, model: Model, version: Version, reason: Reason = "") -> int:
    """candidate -> approved."""
    return _change(ctx, model, f"/versions/{version}/approve", {"reason": reason}, f"approving {model} v{version}")


@app.command()
def reject(ctx: typer.Context, model: Model, version: Version, reason: Reason = "") -> int:
    """candidate/approved -> rejected (final)."""
    return _change(ctx, model, f"/versions/{version}/reject", {"reason": reason}, f"rejecting {model} v{version}")


@app.command()
def promote(ctx: typer.Context, model: Model, version: Version, reason: Reason = "") -> int:
    """An approved version becomes production."""
    return _change(ctx, model, f"/versions/{version}/promote", {"reason": reason}, f"promoting {model} v{version}")


@app.command()
def rollback(
    ctx: typer.Context,
    model: Model,
    version: Annotated[int | None, typer.Argument(help="to this version (default: the previous production)")] = None,
    reason: Reason = "",
) -> int:
    """Production returns to the previous (or the named) production version."""
    body: dict[str, Any] = {"reason": reason} | ({"to_version": version} if version is not None else {})
    return _change(ctx, model, "/rollback", body, f"rolling {model} back")


def _change(ctx: typer.Context, model: str, path: str, body: dict[str, Any], doing: str) -> int:
    answer = checked(resolve(ctx).api().admin("POST", f"/models/{model}{path}", body), doing)
    if "production_version" in answer:
        console().print(f"{model}: production is now v{answer['production_version']}")
    else:
        console().print(f"{model} v{answer['version']}: {answer['status']}")
    return 0


def _or_dash(value: Any) -> str:
    return "-" if value is None else str(value)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{key}={_brief(item)}" for key, item in value.items() if not isinstance(item, (dict, list)))
    return str(value)
