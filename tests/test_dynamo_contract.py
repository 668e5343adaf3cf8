"""Behaviour gate: every command line and config blob of every rendered DynamoGraphDeployment
is fed to the Dynamo 1.6.1 code that receives it (tests/tools/dynamo_contract.py, run in the
project's Dynamo venv), for every shipped config and for a generated matrix of every
combination the config accepts. A combination the config refuses never reaches a cluster, so
the matrix counts it as proven by refusal; everything it accepts must be accepted by Dynamo.
"""

from __future__ import annotations

import functools
import itertools
import json
import subprocess

import cdk8s
import pytest
from pydantic import ValidationError

from config.schema import DeploymentConfig
from k8s_charts import graphs as graph_charts
from plan import plan_problems
from tests.ops_dynamo_support import require_dynamo_venv
from tests.tools.configs import MINIMAL, shipped_configs
from tests.tools.synth import REPO

pytestmark = pytest.mark.xdist_group("dynamo-contract")
RUNNER = REPO / "tests" / "tools" / "dynamo_contract.py"
BASE = MINIMAL


def containers_of(dgd: dict) -> list[tuple[str, dict]]:
    found = []
    for component in dgd["spec"]["components"]:
        for container in component["podTemplate"]["spec"]["containers"]:
            found.append((f"{dgd['metadata']['name']}/{component['name']}", container))
    return found


def cases_for(cfg: DeploymentConfig, label: str) -> list[dict]:
    """One case per container of every DGD the config renders: what runs and with what."""
    app = cdk8s.App()
    cases = []
    for chart in graph_charts.build(app, cfg, graph_charts.review_inputs(cfg)):
        for obj in chart.to_json():
            if obj["kind"] != "DynamoGraphDeployment":
                continue
            for where, container in containers_of(obj):
                command, args = container["command"], container.get("args", [])
                assert command[:2] == ["python3", "-m"], f"{where}: {command}"
                case = {"id": f"{label}:{where}", "module": command[2]}
                if command[2] == "dynamo.planner":
                    assert args[0] == "--config", f"{where}: {args}"
                    case["config"] = args[1]
                else:
                    case["argv"] = args
                case["env"] = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
                cases.append(case)
    return cases


def run_contract(cases: list[dict]) -> dict[str, dict]:
    require_dynamo_venv()
    done = subprocess.run(
        [str(REPO / ".venv-dynamo" / "bin" / "python"), str(RUNNER)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return {result["id"]: result for result in json.loads(done.stdout)}


def refusals(results: dict[str, dict]) -> list[str]:
    return [f"{key}: {r['error']}" for key, r in sorted(results.items()) if not r["ok"]]


# -- every shipped config ------------------------------------------------------------------------


def test_every_shipped_graph_is_accepted_by_dynamo():
    cases = [case for label, cfg in shipped_configs() for case in cases_for(cfg, label)]
    modules = {case["module"] for case in cases}
    # The shipped configs exercise every program that receives something from us.
    assert modules == {
        "dynamo.frontend",
        "dynamo.planner",
        "dynamo.vllm",
        "dynamo.sglang",
        "dynamo.trtllm",
        "dynamo.mocker",
    }, modules
    assert refusals(run_contract(cases)) == []


# -- every combination the config accepts --------------------------------------------------------

BACKENDS = ("vllm", "sglang", "trtllm", "mocker")
TOPOLOGIES = ("agg", "agg_router", "disagg", "disagg_router", "multinode")
PLANNERS = (None, "sla", "throughput", "latency", "load")
LOAD_THRESHOLDS = {
    "prefill_scale_up_queue_tokens": 8192,
    "prefill_scale_down_queue_tokens": 1024,
    "decode_scale_up_kv_rate": 60,
    "decode_scale_down_kv_rate": 20,
}


def matrix_name(backend: str, topology: str, efa: bool, offload: bool, planner: str | None, tp: int) -> str:
    short = {"agg": "a", "agg_router": "ar", "disagg": "d", "disagg_router": "dr", "multinode": "mn"}
    return (
        f"{backend}-{short[topology]}-{'efa' if efa else 'tcp'}-{'kv' if offload else 'no'}-"
        f"{planner or 'fixed'}-tp{tp}"
    )


def matrix_graph(backend: str, topology: str, efa: bool, offload: bool, planner: str | None, tp: int) -> dict:
    """One graph per combination: an 8B model (so TP 1 fits) on 8-GPU nodes with host memory
    for the CPU tier: p5.48xlarge over EFA, or g6e.48xlarge without it."""
    disagg = topology != "agg" and topology != "agg_router"
    role: dict = {"tensor_parallel_size": tp}
    graph: dict = {
        "name": matrix_name(backend, topology, efa, offload, planner, tp),
        "backend": backend,
        "topology": topology,
        "model": "meta-llama/Llama-3.1-8B-Instruct" if backend != "mocker" else "Qwen/Qwen3-0.6B",
        "max_model_len": 16384,
        "efa": efa,
    }
    if backend != "mocker":
        graph["instance_type"] = "p5.48xlarge" if efa else "g6e.48xlarge"
    if topology == "multinode":
        role = {"tensor_parallel_size": tp * 2, "nodes": 2}
    if disagg:
        graph["prefill"] = dict(role)
        graph["decode"] = dict(role)
    else:
        graph["worker"] = dict(role)
    if offload:
        graph["kv_offload"] = {"enabled": True, "cpu_cache_gb": 64}
    if planner:
        graph["planner"] = {"enabled": True, "optimization_target": planner}
        if planner == "load":
            keys = (
                LOAD_THRESHOLDS
                if disagg
                else {k: v for k, v in LOAD_THRESHOLDS.items() if k.startswith("decode")}
            )
            graph["planner"].update(keys)
    return graph


@functools.lru_cache(maxsize=1)
def matrix() -> tuple[list[dict], dict[str, str]]:
    """(accepted graphs' cases, refused combination -> the config's one-line reason)."""
    cases: list[dict] = []
    refused: dict[str, str] = {}
    for combo in itertools.product(BACKENDS, TOPOLOGIES, (False, True), (False, True), PLANNERS, (1, 8)):
        graph = matrix_graph(*combo)
        try:
            cfg = DeploymentConfig.model_validate({**BASE, "graphs": [graph]})
        except ValidationError as err:
            refused[graph["name"]] = err.errors()[0]["msg"]
            continue
        problems = plan_problems(cfg)
        if problems:
            refused[graph["name"]] = problems[0]
            continue
        cases.extend(cases_for(cfg, graph["name"]))
    return cases, refused


def test_every_accepted_combination_is_accepted_by_dynamo():
    cases, refused = matrix()
    accepted = {case["id"].split(":")[0] for case in cases}
    # The matrix must prove something for every backend and topology, not refuse it all.
    for backend, topology in itertools.product(BACKENDS, TOPOLOGIES):
        if backend == "mocker" and topology == "multinode":
            continue  # refused: the CPU simulator cannot span nodes
        prefix = matrix_name(backend, topology, False, False, None, 1).rsplit("-", 4)[0] + "-"
        assert any(name.startswith(prefix) for name in accepted), (backend, topology)
    assert len(accepted) + len(refused) == len(BACKENDS) * len(TOPOLOGIES) * 2 * 2 * len(PLANNERS) * 2
    assert refusals(run_contract(cases)) == []


# -- the gate can fail -----------------------------------------------------------------------------


def planted(
    module: str, argv: list[str] | None = None, env: dict | None = None, config: str | None = None
) -> dict:
    case: dict = {"id": f"planted:{module}:{len(argv or [])}", "module": module, "env": env or {}}
    if config is not None:
        case["config"] = config
    else:
        case["argv"] = argv
    return case


VLLM_AGG = ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--tensor-parallel-size", "1"]
PLANTED = {
    "vLLM --connector kvbm (1.6.1 refuses it)": (
        planted("dynamo.vllm", [*VLLM_AGG, "--connector", "kvbm"]),
        "--connector is no longer supported",
    ),
    "vLLM unknown engine flag": (
        planted("dynamo.vllm", [*VLLM_AGG, "--max-model-length", "4096"]),
        "unrecognized arguments",
    ),
    "vLLM prefill without a KV transfer config": (
        planted("dynamo.vllm", [*VLLM_AGG, "--disaggregation-mode", "prefill"]),
        "--kv-transfer-config",
    ),
    "vLLM KV transfer field that does not exist": (
        planted(
            "dynamo.vllm",
            [
                *VLLM_AGG,
                "--kv-transfer-config",
                '{"kv_connector":"NixlConnector","kv_role":"kv_both","backend":"LIBFABRIC"}',
            ],
        ),
        "no field(s) ['backend']",
    ),
    "vLLM nested PdConnector entry with a bad role": (
        planted(
            "dynamo.vllm",
            [
                *VLLM_AGG,
                "--kv-transfer-config",
                json.dumps(
                    {
                        "kv_connector": "PdConnector",
                        "kv_role": "kv_both",
                        "kv_connector_extra_config": {
                            "connectors": [{"kv_connector": "NixlConnector", "kv_role": "producer"}]
                        },
                    }
                ),
            ],
        ),
        "kv_role='producer'",
    ),
    "SGLang unknown flag": (
        planted("dynamo.sglang", ["--model-path", "Qwen/Qwen3-8B", "--tp", "1", "--hicache-gb", "8"]),
        "unrecognized arguments",
    ),
    "SGLang bad choice": (
        planted("dynamo.sglang", ["--model-path", "Qwen/Qwen3-8B", "--disaggregation-mode", "both"]),
        "invalid choice",
    ),
    "TRT-LLM obsolete --model-path": (
        planted("dynamo.trtllm", ["--model-path", "Qwen/Qwen3-8B"]),
        "obsolete alias",
    ),
    "TRT-LLM engine override that does not exist": (
        planted(
            "dynamo.trtllm",
            ["--model", "Qwen/Qwen3-8B", "--override-engine-args", '{"enable_chunked_prefil":true}'],
        ),
        "no field 'enable_chunked_prefil'",
    ),
    "unknown reasoning parser": (
        planted("dynamo.vllm", [*VLLM_AGG, "--dyn-reasoning-parser", "deepseek-r1"]),
        "invalid choice",
    ),
    "planner load without thresholds": (
        planted("dynamo.planner", config=json.dumps({"optimization_target": "load", "mode": "disagg"})),
        "requires prefill_scale_up_queue_tokens",
    ),
    "planner misspelt key": (
        planted("dynamo.planner", config=json.dumps({"optimization_target": "sla", "max_gpu_budjet": 4})),
        "no field(s) ['max_gpu_budjet']",
    ),
    "frontend unknown router mode": (
        planted("dynamo.frontend", ["--http-port", "8000"], env={"DYN_ROUTER_MODE": "kv-aware"}),
        "invalid choice",
    ),
    "KVBM env name it does not read": (
        planted("dynamo.vllm", VLLM_AGG, env={"DYN_KVBM_CPU_CACHE_GIB": "64"}),
        "kvbm 1.6.1 reads no",
    ),
    "SGLang env name it does not declare": (
        planted("dynamo.sglang", ["--model-path", "Qwen/Qwen3-8B"], env={"SGLANG_NIXL_BACKEND": "LIBFABRIC"}),
        "SGLang declares no",
    ),
    "mocker unknown flag": (
        planted("dynamo.mocker", ["--model-path", "Qwen/Qwen3-0.6B", "--tokens-per-second", "2"]),
        "unrecognized arguments",
    ),
}


def test_the_gate_refuses_planted_defects():
    cases = [case for case, _ in PLANTED.values()]
    for index, case in enumerate(cases):
        case["id"] = f"planted-{index}"
    results = run_contract(cases)
    for index, (name, (_, expected)) in enumerate(PLANTED.items()):
        result = results[f"planted-{index}"]
        assert not result["ok"], f"{name}: accepted"
        assert expected in result["error"], f"{name}: {result['error']}"


# -- the flags a graph manages are the builders' own ---------------------------------------------


def test_every_alias_of_a_managed_engine_option_is_managed_too():
    """extra_engine_args must not set a managed value under another of the engine's names for
    the same option (from the engine records, e.g. vLLM's -tp for --tensor-parallel-size)."""
    from plan.engine_args import MANAGED_FLAGS

    for backend, package in (("vllm", "vllm"), ("sglang", "sglang")):
        (record_path,) = (REPO / "tests" / "data" / "engine_cli").glob(f"{package}-*.json")
        options = json.loads(record_path.read_text(encoding="utf-8"))["options"]
        managed = set(MANAGED_FLAGS[backend])
        for option in options:
            names = {flag for flag in option["flags"] if not flag.startswith("--no-")}
            if names & managed:
                assert names <= managed, f"{backend}: {sorted(names - managed)} alias a managed flag"


def test_a_builder_cannot_emit_an_undeclared_flag():
    from plan.engine_args import Args

    args = Args("vllm")
    with pytest.raises(ValueError, match="not declared"):
        args.add("--enforce-eager")
