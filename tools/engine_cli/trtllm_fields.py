"""Record TensorRT-LLM's LLM-API argument fields by static AST reading of its llm_args.py.

    python -m tools.engine_cli.trtllm_fields PATH/TO/llm_args.py --source REPO@REF:PATH \\
        --out tests/data/engine_cli/

TensorRT-LLM 1.3.0rc29 (ai-dynamo 1.6.1's `trtllm` extra) has no wheel reachable here, and
Dynamo's own trtllm parser defines every CLI flag, so the only engine facts needed are:
the defaults Dynamo reads from ``BaseLlmArgs.model_fields`` (max_batch_size, max_num_tokens,
max_seq_len, max_beam_width; ``BuildConfig`` before 1.3.0rc21) and the keys that
``--override-engine-args`` JSON may hold (``TorchLlmArgs`` and its bases) with the nested
configs we may set. Nothing is imported: pydantic field declarations are read from the AST
(``name: T = Field(default=...)`` / ``name: T = value``), bases are followed within the file,
``Literal[...]`` annotations give choices. A default that is not a literal is recorded as
``null`` (with its source text under ``default_expr``).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import sys
from pathlib import Path

VERSION = "1.3.0rc29"
MODELS = ("TorchLlmArgs", "KvCacheConfig", "CudaGraphConfig", "CacheTransceiverConfig")
# Recorded too when the file defines them (nested configs --override-engine-args may set).
OPTIONAL_MODELS = ("KVEventsConfig", "SchedulerConfig", "AttentionDpConfig", "MoeConfig")
BUILD_FIELDS = ("max_batch_size", "max_num_tokens", "max_seq_len", "max_beam_width")


def _classes(tree: ast.Module) -> dict[str, ast.ClassDef]:
    """Module-level classes, plus aliases such as `CudaGraphConfig = DecodeCudaGraphConfig`."""
    classes = {n.name: n for n in tree.body if isinstance(n, ast.ClassDef)}
    for n in tree.body:
        if (
            isinstance(n, ast.Assign)
            and len(n.targets) == 1
            and isinstance(n.targets[0], ast.Name)
            and isinstance(n.value, ast.Name)
            and n.value.id in classes
        ):
            classes.setdefault(n.targets[0].id, classes[n.value.id])
    return classes


def _union_members(ann: ast.expr) -> list[ast.expr]:
    """Top-level members of Optional[...] / Union[...] / X | Y (Annotated unwrapped)."""
    if isinstance(ann, ast.BinOp) and isinstance(ann.op, ast.BitOr):
        return _union_members(ann.left) + _union_members(ann.right)
    if isinstance(ann, ast.Subscript):
        head = ast.unparse(ann.value).split(".")[-1]
        if head in ("Optional", "Union", "Annotated"):
            elts = ann.slice.elts if isinstance(ann.slice, ast.Tuple) else [ann.slice]
            if head == "Annotated":
                return _union_members(elts[0])
            return [m for e in elts for m in _union_members(e)]
    return [ann]


def _literal_choices(ann: ast.expr | None) -> list[str] | None:
    """Allowed values when the annotation is Literal[...] (optionally with None), else None.

    `bool | Literal["auto"]` and the like admit more than their literals: no choices."""
    if ann is None:
        return None
    found: list[str] = []
    for member in _union_members(ann):
        if isinstance(member, ast.Constant) and member.value is None or ast.unparse(member) == "None":
            continue
        if isinstance(member, ast.Subscript) and ast.unparse(member.value).split(".")[-1] == "Literal":
            elts = member.slice.elts if isinstance(member.slice, ast.Tuple) else [member.slice]
            found += [str(e.value) for e in elts if isinstance(e, ast.Constant)]
        else:
            return None
    return sorted(set(found)) or None


def _default(value: ast.expr | None) -> tuple[object, str | None, bool]:
    """(default or None, source text when not a literal, required?)"""
    if value is None:
        return None, None, True
    if isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1] in ("Field", "PydanticField"):
        kw = {k.arg: k.value for k in value.keywords if k.arg}
        if value.args:
            node = value.args[0]
        elif "default" in kw:
            node = kw["default"]
        elif "default_factory" in kw:
            return None, f"default_factory={ast.unparse(kw['default_factory'])}", False
        else:
            return None, None, True
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return None, None, True
        value = node
    try:
        return ast.literal_eval(value), None, False
    except (ValueError, TypeError, SyntaxError):
        return None, ast.unparse(value), False


def _own_fields(cls: ast.ClassDef) -> dict[str, dict]:
    fields = {}
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        ann = ast.unparse(node.annotation)
        if name.startswith("_") or ann.startswith(("ClassVar", "typing.ClassVar")):
            continue
        default, expr, required = _default(node.value)
        entry = {"default": default, "choices": _literal_choices(node.annotation), "type": ann}
        if expr is not None:
            entry["default_expr"] = expr
        if required:
            entry["required"] = True
        fields[name] = entry
    return fields


def model_fields(classes: dict[str, ast.ClassDef], name: str) -> tuple[dict[str, dict], list[str]]:
    """Fields of `name` including those of its in-file bases (pydantic MRO: later wins)."""
    cls = classes[name]
    fields: dict[str, dict] = {}
    chain = [name]
    for base in reversed(cls.bases):
        bname = ast.unparse(base).split(".")[-1]
        if bname in classes:
            bfields, bchain = model_fields(classes, bname)
            fields.update(bfields)
            chain += bchain
    fields.update(_own_fields(cls))
    return dict(sorted(fields.items())), chain


def extract(path: Path, source: str, note: str | None = None) -> dict:
    text = path.read_bytes()
    classes = _classes(ast.parse(text))
    models = {}
    for name in MODELS + OPTIONAL_MODELS:
        if name not in classes:
            if name in OPTIONAL_MODELS:
                continue
            raise SystemExit(f"{path}: no class {name}")
        fields, chain = model_fields(classes, name)
        models[name] = {"class": classes[name].name, "fields": fields, "bases_in_file": chain[1:]}
    holder = "BuildConfig" if "BuildConfig" in classes else "BaseLlmArgs"
    hfields, _ = model_fields(classes, holder)
    build = {k: hfields[k]["default"] for k in BUILD_FIELDS}
    return {
        "package": "tensorrt-llm",
        "version": VERSION,
        "method": "ast",
        "extracted_by": "tools/engine_cli/trtllm_fields.py",
        "source": source,
        "input_sha256": hashlib.sha256(text).hexdigest(),
        "source_note": note,
        "build_defaults_from": f"{holder}.model_fields",
        "build_defaults": build,
        "models": models,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("path", type=Path, help="a TensorRT-LLM tensorrt_llm/llmapi/llm_args.py")
    ap.add_argument(
        "--source",
        required=True,
        help="where PATH came from: NVIDIA/TensorRT-LLM@<tag or sha>:tensorrt_llm/llmapi/llm_args.py",
    )
    ap.add_argument("--note", help="provenance caveats to keep in the record (source_note)")
    ap.add_argument("--out", type=Path, default=Path("tests/data/engine_cli"))
    args = ap.parse_args(argv)
    rec = extract(args.path, args.source, args.note)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"tensorrt-llm-{VERSION}.json"
    out.write_text(json.dumps(rec, sort_keys=True, indent=1) + "\n")
    print(f"{out}: " + ", ".join(f"{k} {len(v['fields'])} fields" for k, v in rec["models"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
