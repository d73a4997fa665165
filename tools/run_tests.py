"""Run the whole test suite: the core tier once, then the integration tier once per ComfyUI checkout.

    python tools/run_tests.py [--install] [--strict] [--jobs N] [COMFYUI_DIR ...]

COMFYUI_DIR defaults to $COMFYUI_PATH, which may hold several checkouts separated by ':'.
--install  installs into this Python what each checkout needs (its requirements.txt, except
           torch/torchvision/torchaudio, which stay yours) and, per checkout, the frontend
           packages it pins, into a cache folder that is put on PYTHONPATH for its run only.
--strict   (CI) fails unless every integration module passed tests on every checkout given, and
           at least --min-versions checkouts were tested; skips of a whole module count as failures.
--jobs N   runs up to N tiers at once (each single-threaded: tiny models run fastest that way);
           each tier's output is printed when it ends.
Prints a count per tier and ComfyUI version, then a total line. A release tree with a model backported
into it (OVERLAYS) is its own tier, labeled e.g. "0.33.0+qwen-image-2.1"; --min-versions counts releases.
In --strict mode a module whose every test skipped because the tree lacks what it tests (a skip reason
holding ABSENT, e.g. a family only the overlay has) does not count as idle.
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("TACA_TEST_CACHE", Path.home() / ".cache" / "comfyui-taca-tests"))
USER_TORCH = {"torch", "torchvision", "torchaudio"}  # never replaced: the user's (or CI's) own build
PER_VERSION = {"comfyui-frontend-package", "comfyui-embedded-docs"}  # pinned per release: own folder each
SKIPPED_PACKAGES = {"comfyui-workflow-templates"}  # ComfyUI runs without it; large media deps
# backports onto a release: (label, a file only the backport adds, the first release that has it)
OVERLAYS = (("qwen-image-2.1", "comfy/ldm/qwen_image21/model.py", (0, 37, 0)),)
ABSENT = "not in this ComfyUI tree"  # in the skip reason of a test whose model the tree lacks


def requirement_name(line: str) -> str:
    return re.split(r"[<>=!~;\[ ]", line.strip(), maxsplit=1)[0].lower()


def requirements(checkout: Path) -> list[str]:
    lines = (checkout / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def comfyui_version(checkout: Path) -> str:
    """The release, plus "+<overlay>" for a release tree that holds a backport (OVERLAYS)."""
    m = re.search(r'__version__\s*=\s*"([^"]+)"', (checkout / "comfyui_version.py").read_text())
    if not m:
        return checkout.name
    release = tuple(int(x) for x in re.findall(r"\d+", m.group(1))[:3])
    overlays = [name for name, marker, first in OVERLAYS if release < first and (checkout / marker).is_file()]
    return "+".join([m.group(1), *overlays])


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


def install_shared(checkouts):
    """The union of the checkouts' requirements, in one resolve."""
    reqs = sorted({r for c in checkouts for r in requirements(c)
                   if requirement_name(r) not in USER_TORCH | PER_VERSION | SKIPPED_PACKAGES})
    print(f"[run_tests] installing the checkouts' requirements: {' '.join(reqs)}", flush=True)
    pip(*reqs)


def frontend_dir(checkout: Path, install: bool):
    """A folder holding the frontend packages this checkout pins, or None to use the installed ones."""
    pins = sorted(r for r in requirements(checkout) if requirement_name(r) in PER_VERSION)
    if not pins:
        return None
    target = CACHE / "frontend" / "_".join(p.replace("==", "-") for p in pins)
    if not (target / ".complete").exists():
        if not install:
            return None
        print(f"[run_tests] installing {' '.join(pins)} into {target}", flush=True)
        pip("--no-deps", "--upgrade", "--target", str(target), *pins)
        (target / ".complete").touch()
    return target


def run_pytest(paths, junit: Path, env, log: Path) -> int:
    """Runs one tier with its output in log; returns pytest's exit code."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rs", f"--junitxml={junit}", *paths]
    with log.open("w") as out:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
    return rc


def outcomes(junit: Path):
    """{module file: Counter(passed/failed/skipped)} from a JUnit XML report."""
    per_module = defaultdict(Counter)
    if not junit.exists():
        return per_module
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = (case.get("file") or case.get("classname", "").replace(".", "/") or case.get("name", "?"))
        module = module.split("/")[-1].removesuffix(".py") or "?"
        skipped = case.find("skipped")
        if skipped is not None:
            per_module[module]["skipped"] += 1
            reason = (skipped.get("message") or "") + (skipped.text or "")
            per_module[module]["absent"] += ABSENT in reason
        elif case.find("failure") is not None or case.find("error") is not None:
            per_module[module]["failed"] += 1
        else:
            per_module[module]["passed"] += 1
    return per_module


def total(per_module) -> Counter:
    return sum(per_module.values(), Counter())


def line(c: Counter) -> str:
    return f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkouts", nargs="*", type=Path)
    ap.add_argument("--install", action="store_true")
    ap.add_argument("--strict", action="store_true")
    ap.add_argument("--min-versions", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=1)
    args = ap.parse_args()
    checkouts = args.checkouts or [Path(p) for p in os.environ.get("COMFYUI_PATH", "").split(os.pathsep) if p]
    checkouts = [c.expanduser().resolve() for c in checkouts]
    for c in checkouts:
        if not (c / "comfy" / "model_management.py").is_file():
            sys.exit(f"[run_tests] {c} is not a ComfyUI checkout (no comfy/model_management.py)")
    if args.install and checkouts:
        install_shared(checkouts)

    problems, tiers = [], []
    base_env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    base_env.setdefault("OMP_NUM_THREADS", "1")  # tiny models: one thread each is fastest
    tiers.append(("core", "", ["tests/core"], base_env))
    for checkout in checkouts:
        env = {**base_env, "COMFYUI_PATH": str(checkout)}
        if args.strict:
            env["TACA_REQUIRE_INTEGRATION"] = "1"  # the harness fails instead of skipping
        fe = frontend_dir(checkout, args.install)
        if fe is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(fe), env.get("PYTHONPATH")]))
        tiers.append(("integration", comfyui_version(checkout), ["tests/integration"], env))

    results = []
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        def run(i, tier):
            name, version, paths, env = tier
            junit, log = Path(tmp) / f"{i}.xml", Path(tmp) / f"{i}.log"
            rc = run_pytest(paths, junit, env, log)
            label = f"{name} tier" + (f", ComfyUI {version} ({env['COMFYUI_PATH']})" if version else "")
            print(f"\n[run_tests] ===== {label} =====\n{log.read_text(errors='replace')}", flush=True)
            return name, version, outcomes(junit), rc
        for result in pool.map(run, range(len(tiers)), tiers):
            results.append(result)

    print("\n[run_tests] ===== summary =====")
    grand = Counter()
    for tier, version, per_module, rc in results:
        counts = total(per_module)
        grand += counts
        print(f"{tier:<12} {('ComfyUI ' + version) if version else '':<31} {line(counts)}  (pytest exit {rc})")
        if rc != 0:
            problems.append(f"{tier} {version}: pytest exited {rc}")
        if tier == "integration" and args.strict:
            idle = sorted(m for m, c in per_module.items()
                          if c["passed"] == 0 and not (c["failed"] == 0 and c["absent"] == c["skipped"] > 0))
            if idle or not per_module:
                problems.append(f"ComfyUI {version}: integration modules with no passing test: {idle or 'all'}")
    tested = {v.split("+")[0] for tier, v, pm, _ in results if tier == "integration" and total(pm)["passed"]}
    if args.strict and len(tested) < args.min_versions:
        problems.append(f"only {len(tested)} ComfyUI release(s) tested, {args.min_versions} required")
    if not checkouts:
        print("(integration tier not run: give ComfyUI checkouts, or set COMFYUI_PATH)")
    for p in problems:
        print(f"[run_tests] FAIL: {p}")
    print(f"TOTAL: {line(grand)}")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
