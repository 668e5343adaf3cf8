"""The pinned engine command-line records in tests/data/engine_cli/ (see its README.md).

(a) each record parses and has the documented shape; (b) each record's version is the one
ai-dynamo 1.6.1 (as installed in .venv-dynamo) pins for its extra; (c) a planted defect shows
that (b) reports a mismatch. No engine is imported and nothing touches the network.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "tests" / "data" / "engine_cli"
DYNAMO_PYTHON = REPO / ".venv-dynamo" / "bin" / "python"

# record "package" -> ai-dynamo extra that pins it
EXTRA_OF = {"vllm": "vllm", "sglang": "sglang", "tensorrt-llm": "trtllm"}
KINDS = {"str", "int", "float", "json", "store_true", "store_false", "bool_optional", "bool_value", "other"}
OPTION_KEYS = {"flags", "dest", "kind", "nargs", "choices"}


def _records() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(RECORDS.glob("*.json"))}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dynamo_extra_pins(requires: list[str]) -> dict[str, tuple[str, str]]:
    """ai-dynamo's Requires-Dist -> {extra: (package, pinned version)} for `name==version` pins."""
    pins = {}
    for req in requires:
        m = re.match(r"\s*([A-Za-z0-9._-]+)(?:\[[^\]]*\])?\s*==\s*([^;\s]+)\s*;(.*)$", req)
        if not m:
            continue
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", m.group(3))
        if extra:
            pins[extra.group(1)] = (_norm(m.group(1)), m.group(2))
    return pins


def version_mismatches(records: dict[str, dict], pins: dict[str, tuple[str, str]]) -> list[str]:
    """Every record whose package/version is not what ai-dynamo pins for the matching extra."""
    problems = []
    for name, rec in records.items():
        extra = EXTRA_OF.get(rec.get("package"))
        if extra is None:
            problems.append(f"{name}: unknown package {rec.get('package')!r}")
        elif extra not in pins:
            problems.append(f"{name}: ai-dynamo declares no `==` pin for extra {extra!r}")
        elif pins[extra] != (_norm(rec["package"]), rec.get("version")):
            problems.append(
                f"{name}: records {rec['package']}=={rec.get('version')}, "
                f"ai-dynamo[{extra}] pins {pins[extra][0]}=={pins[extra][1]}"
            )
    return problems


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    recs = _records()
    assert {r["package"] for r in recs.values()} >= {"vllm", "sglang"}, sorted(recs)
    return recs


@pytest.fixture(scope="module")
def ai_dynamo_requires() -> list[str]:
    if not DYNAMO_PYTHON.exists():
        pytest.fail(f"{DYNAMO_PYTHON} is missing; build it with `make dynamo-venv` (make test does)")
    out = subprocess.run(
        [
            str(DYNAMO_PYTHON),
            "-c",
            "import importlib.metadata as m, json; "
            "print(m.version('ai-dynamo')); print(json.dumps(m.requires('ai-dynamo')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    assert out[0] == "1.6.1", f".venv-dynamo has ai-dynamo {out[0]}, the records are for 1.6.1"
    return json.loads(out[1])


def test_engine_records_have_the_documented_shape(records):
    for name, rec in records.items():
        if rec["package"] == "tensorrt-llm":
            continue
        assert name == f"{rec['package']}-{rec['version']}.json"
        assert rec["method"] in ("import", "ast"), name
        assert rec["extracted_by"] == "tools/engine_cli/extract.py"
        assert re.fullmatch(r"[0-9a-f]{64}", rec["wheel_sha256"]), name
        assert rec["wheel"].startswith(f"{rec['package']}-{rec['version']}-") and rec["wheel"].endswith(
            ".whl"
        )
        assert len(rec["options"]) > 100, f"{name}: the record must hold the whole parser"
        seen = set()
        for opt in rec["options"]:
            assert set(opt) >= OPTION_KEYS, (name, opt)
            assert opt["kind"] in KINDS, (name, opt)
            assert opt["flags"] and all(f.startswith("-") for f in opt["flags"]), (name, opt)
            assert not seen & set(opt["flags"]), (name, opt["flags"])
            seen |= set(opt["flags"])
            if opt["choices"] is not None:
                assert opt["choices"] == sorted(opt["choices"]), (name, opt)
            if opt["kind"] == "json":
                assert "json_class" in opt and "json_fields" in opt, (name, opt)
            if opt["kind"] in ("other", "bool_value"):
                assert opt.get("type_repr"), (name, opt)
    vllm = {f: o for o in records["vllm-0.31.0.json"]["options"] for f in o["flags"]}
    assert vllm["--tensor-parallel-size"]["kind"] == "int"
    assert vllm["--enable-prefix-caching"]["kind"] == "bool_optional"
    kvt = vllm["--kv-transfer-config"]
    assert kvt["json_class"] == "KVTransferConfig" and "kv_connector" in kvt["json_fields"]
    assert kvt["json_field_choices"]["kv_role"] == ["kv_both", "kv_consumer", "kv_producer"]
    assert "endpoint" in records["vllm-0.31.0.json"]["config_classes"]["KVEventsConfig"]["json_fields"]
    sglang = {f: o for o in records["sglang-0.5.21.json"]["options"] for f in o["flags"]}
    assert sglang["--tp-size"]["kind"] == "int"


def test_trtllm_record_has_the_documented_shape(records):
    trt = [r for r in records.values() if r["package"] == "tensorrt-llm"]
    if not trt:
        pytest.fail("tests/data/engine_cli/ has no tensorrt-llm record (see its README.md)")
    rec = trt[0]
    assert rec["method"] == "ast"
    assert rec["extracted_by"] == "tools/engine_cli/trtllm_fields.py"
    assert re.fullmatch(r"NVIDIA/TensorRT-LLM@[\w.]+:tensorrt_llm/llmapi/llm_args\.py", rec["source"])
    assert set(rec["build_defaults"]) == {"max_batch_size", "max_num_tokens", "max_seq_len", "max_beam_width"}
    for model in ("TorchLlmArgs", "KvCacheConfig", "CudaGraphConfig", "CacheTransceiverConfig"):
        fields = rec["models"][model]["fields"]
        assert fields and all(set(v) >= {"default", "choices"} for v in fields.values()), model
    override_keys = rec["models"]["TorchLlmArgs"]["fields"]
    for key in (
        "enable_chunked_prefill",
        "max_num_tokens",
        "cuda_graph_config",
        "kv_cache_config",
        "cache_transceiver_config",
        "disable_overlap_scheduler",
    ):
        assert key in override_keys, key
    assert "NIXL" in rec["models"]["CacheTransceiverConfig"]["fields"]["backend"]["choices"]


def test_record_versions_are_ai_dynamo_pins(records, ai_dynamo_requires):
    pins = dynamo_extra_pins(ai_dynamo_requires)
    assert version_mismatches(records, pins) == []


def test_a_record_with_another_version_is_reported(records, ai_dynamo_requires):
    pins = dynamo_extra_pins(ai_dynamo_requires)
    planted = copy.deepcopy(records["vllm-0.31.0.json"])
    planted["version"] = "0.30.0"
    problems = version_mismatches({"planted.json": planted}, pins)
    assert len(problems) == 1 and "0.30.0" in problems[0] and "0.31.0" in problems[0], problems
    # and a package whose extra ai-dynamo does not pin at all
    stray = dict(planted, package="llama-cpp")
    assert version_mismatches({"stray.json": stray}, pins)
