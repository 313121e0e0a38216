"""Make the README's screenshot of the MLflow compare view from a real queued grid, in a real browser.

    python tools/compare_screenshot.py [--epochs 1] [--out docs/images/mlflow-compare.png]

In a fresh clone of this repository (a temporary folder), on the default data with
``train.epochs`` set to EPOCHS: a committed baseline (``dvc repro``), then the README's grid
(``dvc exp run --queue -S model.cell=gru,lstm -S decode.beam_width=1,5``, ``dvc queue start -j
2``), then ``mlflow ui`` on that clone's store and headless Chromium photographing the compare
view of the grid's four evaluations, every param row shown (the model's ``model.*`` beside the
``decode.*`` settings; MLflow would scroll them inside a short box) down to the metrics. Needs
this environment's ``dvc``, ``mlflow`` and torch (run it with the project's .venv), Selenium
(``pip install selenium``) and Debian's ``chromium`` and ``chromium-driver``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]


def sh(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_grid(repo: Path, epochs: int, env: dict[str, str]) -> dict:
    """A fresh clone at ``repo`` with ``train.epochs`` = epochs: the committed baseline, then the queued grid."""
    sh(["git", "clone", "-q", str(ROOT), str(repo)], repo.parent, env)
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    params["train"]["epochs"] = epochs
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    sh([*DVC, "repro"], repo, env)
    sh(["git", "add", "-A"], repo, env)
    sh(["git", "-c", "user.name=seq2seq", "-c", "user.email=seq2seq@localhost", "commit", "-qm", "baseline"], repo, env)
    sh([*DVC, "exp", "run", "--queue", "-S", "model.cell=gru,lstm", "-S", "decode.beam_width=1,5"], repo, env)
    sh([*DVC, "queue", "start", "-j", "2"], repo, env)
    while any(word in (status := sh([*DVC, "queue", "status"], repo, env)) for word in ("Queued", "Running")):
        time.sleep(10)
    print(status, file=sys.stderr)
    return params


# Every element that scrolls its content inside a fixed height (the compare view's params box) shown whole.
UNCLIP = """
for (const el of document.querySelectorAll('body *')) {
  const style = getComputedStyle(el);
  if (['auto', 'scroll'].includes(style.overflowY) && el.scrollHeight > el.clientHeight + 5) {
    el.style.maxHeight = 'none'; el.style.height = 'auto'; el.style.overflowY = 'visible';
  }
}"""
# The picture's right and bottom edges: the main panel without the assistant, down to the Artifacts section.
EDGES = """
const find = text => document.evaluate(`//*[normalize-space(text())='${text}']`, document, null,
                                       XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue;
const artifacts = find('Artifacts'), assistant = find('MLflow Assistant');
return [assistant ? assistant.getBoundingClientRect().left - 24 : window.innerWidth,
        artifacts ? artifacts.getBoundingClientRect().top - 16 : document.body.scrollHeight];"""


def photograph(url: str, out: Path, browser: str, driver: str) -> None:
    """Open ``url`` in headless Chromium, show every param row, and save the view down to the metrics."""
    from PIL import Image  # (matplotlib's dependency)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1900,3600"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    try:
        chrome.get(url)
        time.sleep(20)  # the page renders its tables and plot after loading the runs
        chrome.execute_script(UNCLIP)
        time.sleep(2)
        right, bottom = chrome.execute_script(EDGES)
        chrome.save_screenshot(str(out))
    finally:
        chrome.quit()
    with Image.open(out) as shot:
        cropped = shot.crop((0, 0, min(shot.width, int(right)), min(shot.height, int(bottom))))
    cropped.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "mlflow-compare.png")
    parser.add_argument("--keep", action="store_true", help="keep the temporary clone (its path is printed)")
    parser.add_argument("--from-clone", type=Path, help="photograph the grid already run in this clone (kept by --keep)")
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        sys.exit("error: chromium and chromedriver must be on PATH; install them (Debian: apt-get install chromium "
                 "chromium-driver)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if args.from_clone:
        repo, work = args.from_clone.resolve(), None
        params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    else:
        work = Path(tempfile.mkdtemp(prefix="seq2seq-compare-"))
        repo = work / "repo"
        params = run_grid(repo, args.epochs, env)

    import mlflow

    store = f"sqlite:///{repo / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(params["mlflow"]["experiment_name"]).experiment_id
    # the grid's four evaluations: its GRU x beam 5 cell is the baseline's own (DVC restores it unchanged)
    grid = client.search_runs([experiment], filter_string="tags.`seq2seq.kind` = 'evaluation'",
                              order_by=["attributes.start_time ASC"])
    if len(grid) != 4:
        sys.exit(f"error: expected the grid's 4 evaluations, found {len(grid)}")
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store, "--host", "127.0.0.1",
                           "--port", str(port)], cwd=repo, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        ids = ",".join(f'"{r.info.run_id}"' for r in grid)
        url = f"http://127.0.0.1:{port}/#/compare-runs?runs=[{ids}]&experiments=[\"{experiment}\"]"
        args.out.parent.mkdir(parents=True, exist_ok=True)
        photograph(url, args.out, browser, driver)
    finally:
        ui.terminate()
        ui.wait(timeout=30)
    print(f"wrote {args.out} from {url}")
    if args.keep or work is None:
        print(f"clone kept at {repo}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
