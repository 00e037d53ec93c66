"""`mlops drift open M`: the latest drift report's page, fetched through the models API (signed),
written to a temporary file and opened in the browser."""

from __future__ import annotations

import tempfile
import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from mlops_local.cli.common import CommandFailed, checked, console, resolve

app = typer.Typer(help="Drift reports.")


@app.command("open")
def open_report(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="the model's name")],
    browser: Annotated[bool, typer.Option(help="open the page in the browser")] = True,
    print_url: Annotated[bool, typer.Option("--print-url", help="print the page's file:// URL only")] = False,
) -> int:
    """Open MODEL's latest drift report (the page is written to a temporary file)."""
    api = resolve(ctx).api()
    history = checked(api.admin("GET", f"/models/{model}/drift?limit=1"), f"reading {model}'s drift runs")
    runs = history.get("history") or []
    if not runs:
        raise CommandFailed(f"{model} has no drift runs yet (they run on a schedule once it serves traffic)")
    report_id = runs[0]["report_id"]
    page = checked(api.admin("GET", f"/models/{model}/drift/{report_id}?format=html"), f"reading report {report_id}")
    if not isinstance(page, str):
        raise CommandFailed(f"report {report_id} came back as {type(page).__name__}, not an HTML page")
    with tempfile.NamedTemporaryFile("w", suffix=".html", prefix=f"drift-{model}-{report_id}-", delete=False) as file:
        file.write(page)
    url = Path(file.name).as_uri()
    if print_url:
        print(url)
        return 0
    console().print(f"{model} drift report {report_id}: {url}")
    if browser:
        webbrowser.open(url)
    return 0
