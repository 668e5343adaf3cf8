"""Record an inference engine's command-line surface from its released wheel.

    python -m tools.engine_cli.extract vllm|sglang --out tests/data/engine_cli/
        [--python /path/to/venv/bin/python] [--wheel /path/to/engine.whl] [--keep]

The engine and version are those that ai-dynamo 1.6.1 pins for its extras (``PINS`` below;
tests/test_engine_cli_records.py checks the records against ai-dynamo's Requires-Dist). The
script

1. downloads the pinned wheel (``pip download --no-deps``) unless ``--wheel`` names it, and
   hashes it;
2. builds a throw-away venv under /tmp (unless ``--python`` names one), installs the CPU
   torch 2.13.0 that lies on this machine's disk (both engines pin torch==2.13.0), the engine
   wheel with ``--no-deps``, and only the packages that importing the argument definitions
   needs (``IMPORT_DEPS``; each taken at the version the engine's own Requires-Dist asks for);
3. runs ``_walk.py`` in that venv: it imports ONLY the argument-definition code
   (``vllm.engine.arg_utils.AsyncEngineArgs.add_cli_args`` on vLLM's FlexibleArgumentParser;
   ``sglang.srt.server_args.ServerArgs.add_cli_args`` on a plain argparse parser, exactly as
   dynamo/vllm/args.py and dynamo/sglang/args.py do) and walks ``parser._actions``;
4. writes ``<package>-<version>.json`` (sorted keys, indent 1), ``"method": "import"``.

Nothing of the engine is imported in this process: the test suite never needs the engine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXTRACTED_BY = "tools/engine_cli/extract.py"

# ai-dynamo 1.6.1: vllm[flashinfer,otel,runai]==0.31.0 (extra vllm), sglang[diffusion]==0.5.21
# (extra sglang). tensorrt-llm==1.3.0rc29 (extra trtllm) has no wheel on PyPI: see trtllm_fields.py.
PINS = {"vllm": "0.31.0", "sglang": "0.5.21"}
TORCH = "torch==2.13.0"  # the CPU build on local disk; both engines pin exactly this

# What `import` of the argument definitions needs, found by importing until it succeeded.
# Names are distribution names; the version comes from the engine's own Requires-Dist.
IMPORT_DEPS = {
    "vllm": [
        "aiohttp",
        "blake3",
        "cachetools",
        "cbor2",
        "cloudpickle",
        "fastapi",
        "llguidance",
        "msgspec",
        "numpy",
        "openai-harmony",
        "openai",
        "partial-json-parser",
        "pillow",
        "prometheus-client",
        "psutil",
        "py-cpuinfo",
        "pybase64",
        "pydantic",
        "pyyaml",
        "pyzmq",
        "regex",
        "requests",
        "tqdm",
        "transformers",
        "uvloop",
        "xgrammar",
    ],
    "sglang": [
        "aiohttp",
        "ipython",
        "msgspec",
        "numpy",
        "orjson",
        "packaging",
        "pillow",
        "psutil",
        "pybase64",
        "pydantic",
        "pyyaml",
        "pyzmq",
        "regex",
        "requests",
        "starlette",
        "tokenizers",
        "tqdm",
        "transformers",
        "triton",
    ],
}
_MARK = "@@ENGINE_CLI_JSON@@"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_requires(wheel: Path) -> dict[str, str]:
    """Unconditional (no extra) Requires-Dist of a wheel: normalized name -> requirement."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        text = z.read(meta).decode()
    reqs: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        req = line.split(":", 1)[1].strip()
        if "extra ==" in req:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", req)
        if match is None:
            raise ValueError(f"{wheel.name}: Requires-Dist without a project name: {req}")
        name = match.group(0)
        # keep the first unconditional or marker-qualified entry (pip evaluates the marker)
        reqs.setdefault(_norm(name), req)
    return reqs


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def fetch_wheel(engine: str, workdir: Path) -> Path:
    dest = workdir / "wheels"
    dest.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "-d",
            str(dest),
            f"{engine}=={PINS[engine]}",
        ]
    )
    return next(dest.glob(f"{engine}-{PINS[engine]}-*.whl"))


def build_venv(engine: str, wheel: Path, workdir: Path) -> Path:
    venv = workdir / f"venv-{engine}"
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    pip = [str(py), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(pip + [TORCH])
    run(pip + ["--no-deps", str(wheel)])
    pinned = wheel_requires(wheel)
    deps = [pinned.get(_norm(d), d) for d in IMPORT_DEPS[engine]]
    # pip would otherwise resolve e.g. xgrammar's own torch requirement: 2.13.0 is there already.
    run(pip + deps + [TORCH])
    return py


def walk(engine: str, python: Path) -> dict:
    proc = subprocess.run(
        [str(python), str(HERE / "_walk.py"), engine], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0 or _MARK not in proc.stdout:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(
            f"importing {engine}'s argument definitions failed (exit "
            f"{proc.returncode}); add the missing package to IMPORT_DEPS"
        )
    return json.loads(proc.stdout.split(_MARK, 1)[1])


def record(engine: str, wheel: Path, raw: dict) -> dict:
    options = raw["options"]
    for o in options:  # same key set on every option
        o.setdefault("nargs", None)
        o.setdefault("choices", None)
        if o["kind"] == "json":
            o.setdefault("json_class", None)
            o.setdefault("json_fields", None)
    rec = {
        "package": engine,
        "version": PINS[engine],
        "wheel": wheel.name,
        "wheel_sha256": sha256(wheel),
        "method": "import",
        "extracted_by": EXTRACTED_BY,
        "parser": raw["parser_class"],
        "options": options,
    }
    if raw.get("config_classes"):
        rec["config_classes"] = raw["config_classes"]
    return rec


def write(rec: dict, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{rec['package']}-{rec['version']}.json"
    path.write_text(json.dumps(rec, sort_keys=True, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("engine", choices=sorted(PINS))
    ap.add_argument("--out", type=Path, default=Path("tests/data/engine_cli"))
    ap.add_argument("--python", type=Path, help="python of a venv that already has the engine")
    ap.add_argument("--wheel", type=Path, help="the pinned engine wheel (else pip download)")
    ap.add_argument("--keep", action="store_true", help="keep the throw-away venv")
    args = ap.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix=f"engine-cli-{args.engine}-", dir="/tmp"))
    try:
        wheel = args.wheel or fetch_wheel(args.engine, workdir)
        if not wheel.name.startswith(f"{args.engine}-{PINS[args.engine]}-"):
            raise SystemExit(f"{wheel.name} is not {args.engine}=={PINS[args.engine]}")
        python = args.python or build_venv(args.engine, wheel, workdir)
        path = write(record(args.engine, wheel, walk(args.engine, python)), args.out)
        print(f"{path}: {len(json.loads(path.read_text())['options'])} options")
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    sys.exit(main())
