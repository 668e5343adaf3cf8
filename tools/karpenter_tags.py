"""Record the tags Karpenter puts on the AWS resources it creates, read from its Go source.

The teardown guard (stacks/teardown_guard_handler/index.py) finds Karpenter's leftovers by
tag, so the tags must be Karpenter's real ones, for the pinned version. This script reads
them from a copy of aws/karpenter-provider-aws at a release tag (plus the Go modules its
constants come from: kubernetes-sigs/karpenter core and k8s.io/api, at the versions its
go.mod pins) and writes tests/data/karpenter/resource-tags-v<version>.json. No Go source
is copied; the record holds the resolved tag keys/values and the files they were read from.

The extraction is plain text: the Go constants of the packages involved are resolved
(string literals joined with +, same-package names, imported package names), the tag maps
are the `map[string]string{...}` literals of a few named functions, and which resource
types receive which map is read from the TagSpecifications in the code that creates them.
Every step fails loudly if the source no longer looks as expected, so a Karpenter bump that
moves or renames a tag makes the refresh fail instead of silently recording less.

Usage (git directories as made by `git clone --mirror`, or checkouts):

    python -m tools.karpenter_tags --provider /path/karpenter-provider-aws.git --ref v1.14.1 \\
        --module sigs.k8s.io/karpenter=/path/karpenter.git --module k8s.io/api=/path/api.git

Each --module is checked out at the version the provider's go.mod requires (a pseudo-version
means its commit; otherwise the tag of that name).

The module also holds `mismatches()`, which tests use to compare the tags code relies on
with the record.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA_DIR = REPO / "tests" / "data" / "karpenter"
PROVIDER_MODULE = "github.com/aws/karpenter-provider-aws"
PROVIDER_URL = "https://github.com/aws/karpenter-provider-aws"
MODULE_URLS = {
    "sigs.k8s.io/karpenter": "https://github.com/kubernetes-sigs/karpenter",
    "k8s.io/api": "https://github.com/kubernetes/api",
}

# Go expressions in the tag maps that stand for run-time values, and the placeholder the
# record uses for them. An expression not listed here stops the extraction.
PLACEHOLDERS = {
    "clusterName": "{cluster}",
    "options.FromContext(ctx).ClusterName": "{cluster}",
    "nodeClaim.Labels[karpv1.NodePoolLabelKey]": "{nodepool}",
    "nodeClass.Name": "{ec2nodeclass}",
    "in.Name": "{ec2nodeclass}",
    "region": "{region}",
    "nc.Status.NodeName": "{node-name}",
    "nc.Name": "{nodeclaim}",
}
CLUSTER = "{cluster}"


# --------------------------------------------------------------------------- reading source


@dataclass
class Source:
    """One Go module's files at one revision: a git directory + ref, or a checkout."""

    path: Path
    ref: str | None = None
    _cache: dict[str, str] = field(default_factory=dict)

    @property
    def is_git(self) -> bool:
        return self.ref is not None

    def _git(self, *args: str) -> str:
        return subprocess.run(
            ["git", f"--git-dir={self.path}", *args], check=True, capture_output=True, text=True
        ).stdout

    def commit(self) -> str:
        if self.is_git:
            return self._git("rev-parse", f"{self.ref}^{{commit}}").strip()
        return subprocess.run(
            ["git", "-C", str(self.path), "rev-parse", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()

    def read(self, rel: str) -> str:
        if rel not in self._cache:
            if self.is_git:
                self._cache[rel] = self._git("show", f"{self.ref}:{rel}")
            else:
                self._cache[rel] = (self.path / rel).read_text()
        return self._cache[rel]

    def go_files(self, directory: str) -> list[str]:
        if self.is_git:
            names = self._git("ls-tree", "--name-only", f"{self.ref}:{directory}").split()
            names = [f"{directory}/{n}" for n in names]
        else:
            names = [str(p.relative_to(self.path)) for p in (self.path / directory).iterdir()]
        return sorted(n for n in names if n.endswith(".go") and not n.endswith("_test.go"))


def open_source(path: str, ref: str | None) -> Source:
    p = Path(path)
    if ref is None and not (p / ".git").exists() and (p / "HEAD").exists():
        raise SystemExit(f"{path} is a git directory; give the revision to read")
    return Source(p, ref)


def required_version(go_mod: str, module: str) -> str:
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(\S+)", go_mod, re.M)
    if not match:
        raise SystemExit(f"go.mod does not require {module}")
    return match.group(1)


def ref_for(version: str) -> str:
    """A Go pseudo-version ends in a 12-hex commit; anything else is a tag."""
    pseudo = re.search(r"-(?:0\.)?\d{14}-([0-9a-f]{12})$", version)
    return pseudo.group(1) if pseudo else version


# --------------------------------------------------------------------------- Go text helpers


def _skip_string(text: str, i: int) -> int:
    quote = text[i]
    i += 1
    while text[i] != quote:
        i += 2 if quote == '"' and text[i] == "\\" else 1
    return i + 1


def matching(text: str, open_at: int) -> int:
    """Index just past the bracket that closes the one at open_at (strings skipped)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    stack = [pairs[text[open_at]]]
    i = open_at + 1
    while stack:
        ch = text[i]
        if ch in '"`':
            i = _skip_string(text, i)
            continue
        if text.startswith("//", i):
            i = text.index("\n", i)
            continue
        if ch in pairs:
            stack.append(pairs[ch])
        elif ch == stack[-1]:
            stack.pop()
        i += 1
    return i


def split_top(text: str, sep: str) -> list[str]:
    """Split at sep outside brackets, strings and comments."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        if ch in '"`':
            i = _skip_string(text, i)
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            text = text[:i] + text[end if end >= 0 else len(text) :]
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def func_body(text: str, name: str, where: str) -> str:
    match = re.search(rf"^func (?:\([^)]*\) )?{re.escape(name)}\(", text, re.M)
    if not match:
        raise SystemExit(f"{where}: func {name} not found")
    brace = text.index("{\n", matching(text, match.end() - 1))
    return text[brace : matching(text, brace)]


def imports(text: str) -> dict[str, str]:
    """alias -> package path, for one Go file."""
    found: dict[str, str] = {}
    block = re.search(r"^import \((.*?)^\)", text, re.M | re.S)
    lines = block.group(1).splitlines() if block else re.findall(r"^import (.+)$", text, re.M)
    for line in lines:
        m = re.match(r'\s*(\w+\s+)?"([^"]+)"', line)
        if m:
            alias = (m.group(1) or "").strip() or m.group(2).rsplit("/", 1)[-1]
            found[alias] = m.group(2)
    return found


def go_string(literal: str) -> str:
    if literal.startswith("`"):
        return literal[1:-1]
    return json.loads(literal)


# --------------------------------------------------------------------------- constants


class Constants:
    """Resolves Go string constants across the provider and the modules it imports."""

    def __init__(self, sources: dict[str, Source]) -> None:
        self.sources = sources  # module path -> Source
        self.packages: dict[str, dict[str, tuple[str, str]]] = {}  # pkg -> name -> (expr, file)
        self.used: dict[str, dict[str, str]] = {}  # "pkg.Name" -> {"value", "file", "module"}

    def _locate(self, package: str) -> tuple[str, Source, str]:
        for module in sorted(self.sources, key=len, reverse=True):
            if package == module or package.startswith(module + "/"):
                return module, self.sources[module], package[len(module) :].lstrip("/")
        raise SystemExit(f"constant from {package}: no source given for its module (--module)")

    def _declarations(self, package: str) -> dict[str, tuple[str, str]]:
        if package not in self.packages:
            _, source, directory = self._locate(package)
            decls: dict[str, tuple[str, str]] = {}
            for rel in source.go_files(directory):
                text = source.read(rel)
                for block in re.finditer(r"^(?:const|var) \((.*?)^\)", text, re.M | re.S):
                    for m in re.finditer(
                        r"^\s*([A-Za-z_]\w*)\s+(?:[\w.]+\s+)?=\s*(.+?)\s*(?://.*)?$",
                        block.group(1),
                        re.M,
                    ):
                        decls.setdefault(m.group(1), (m.group(2), rel))
                for m in re.finditer(
                    r"^(?:const|var) ([A-Za-z_]\w*)\s+(?:[\w.]+\s+)?=\s*(.+?)\s*(?://.*)?$", text, re.M
                ):
                    decls.setdefault(m.group(1), (m.group(2), rel))
            self.packages[package] = decls
        return self.packages[package]

    def value(self, package: str, name: str) -> str:
        decls = self._declarations(package)
        if name not in decls:
            raise SystemExit(f"{package}: constant {name} not found")
        expr, rel = decls[name]
        module, source, _ = self._locate(package)
        result = self.evaluate(expr, package, source.read(rel))
        self.used[f"{package}.{name}"] = {"value": result, "module": module, "file": rel}
        return result

    def evaluate(self, expr: str, package: str, file_text: str) -> str:
        out = []
        for term in split_top(expr, "+"):
            if term[0] in '"`':
                out.append(go_string(term))
            elif re.fullmatch(r"[A-Za-z_]\w*", term):
                out.append(self.value(package, term))
            elif m := re.fullmatch(r"([A-Za-z_]\w*)\.([A-Za-z_]\w*)", term):
                alias, name = m.groups()
                pkgs = imports(file_text)
                if alias not in pkgs:
                    raise SystemExit(f"{package}: unknown package alias {alias!r} in {expr!r}")
                out.append(self.value(pkgs[alias], name))
            else:
                raise SystemExit(f"{package}: cannot evaluate {term!r} in {expr!r}")
        return "".join(out)


# --------------------------------------------------------------------------- tag maps


@dataclass
class TagMap:
    name: str
    file: str
    function: str
    tags: dict[str, str]
    note: str


def tag_map(consts: Constants, source: Source, rel: str, function: str, name: str, note: str) -> TagMap:
    package = f"{PROVIDER_MODULE}/{rel.rsplit('/', 1)[0]}"
    text = source.read(rel)
    body = func_body(text, function, rel)
    start = body.find("map[string]string{")
    if start < 0:
        raise SystemExit(f"{rel}: {function} has no map[string]string literal")
    brace = body.index("{", start)
    literal = body[brace + 1 : matching(body, brace) - 1]
    tags: dict[str, str] = {}
    for entry in split_top(literal, ","):
        key_expr, value_expr = split_top(entry, ":")
        tags[_tag_part(consts, package, text, key_expr, rel)] = _tag_part(
            consts, package, text, value_expr, rel
        )
    return TagMap(name, rel, function, tags, note)


def _tag_part(consts: Constants, package: str, text: str, expr: str, rel: str) -> str:
    if expr in PLACEHOLDERS:
        return PLACEHOLDERS[expr]
    sprintf = re.fullmatch(r"fmt\.Sprintf\((\".*?\"),\s*(.+)\)", expr)
    if sprintf:
        args = split_top(sprintf.group(2), ",")
        fmt = go_string(sprintf.group(1))
        for arg in args:
            if arg not in PLACEHOLDERS:
                raise SystemExit(f"{rel}: unknown run-time value {arg!r} in {expr!r}")
            fmt = fmt.replace("%s", PLACEHOLDERS[arg], 1)
        return fmt
    return consts.evaluate(expr, package, text)


def kebab(go_name: str) -> str:
    """ec2types.ResourceTypeLaunchTemplate -> launch-template (the SDK's enum value)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", go_name).lower()


def require(source: Source, rel: str, pattern: str, what: str) -> dict:
    if not re.search(pattern, source.read(rel), re.S):
        raise SystemExit(f"{rel}: no longer matches {pattern!r} ({what})")
    return {"file": rel, "pattern": pattern, "shows": what}


# --------------------------------------------------------------------------- the record


def build_record(provider: Source, modules: dict[str, Source], tag: str) -> dict:
    go_mod = provider.read("go.mod")
    consts = Constants({PROVIDER_MODULE: provider, **modules})

    nodeclaim = tag_map(
        consts,
        provider,
        "pkg/utils/utils.go",
        "GetTags",
        "nodeclaim",
        "utils.GetTags: the tags of everything launched for a NodeClaim, assigned over the "
        "EC2NodeClass's spec.tags (these win; spec.tags may not use them)",
    )
    profile = tag_map(
        consts,
        provider,
        "pkg/apis/v1/ec2nodeclass.go",
        "InstanceProfileTags",
        "instance-profile",
        "EC2NodeClass.InstanceProfileTags: tags of the instance profile Karpenter creates for "
        "an EC2NodeClass with spec.role (over spec.tags)",
    )
    tagging = tag_map(
        consts,
        provider,
        "pkg/controllers/nodeclaim/tagging/controller.go",
        "tagInstance",
        "instance-after-launch",
        "nodeclaim.tagging controller: CreateTags on the instance once its node registered "
        "(only keys the instance does not have yet)",
    )

    # Which resource types receive the NodeClaim tags.
    fleet_rel = "pkg/providers/instance/types.go"
    fleet_body = func_body(provider.read(fleet_rel), "NewCreateFleetInputBuilder", fleet_rel)
    listed = re.search(r"taggedResources = \[\]ec2types\.ResourceType\{(.*?)\}", fleet_body, re.S)
    if not listed or "utils.EC2MergeTags(tags)" not in fleet_body:
        raise SystemExit(f"{fleet_rel}: CreateFleet tag specifications changed")
    fleet_kinds = [kebab(n) for n in re.findall(r"ec2types\.ResourceType(\w+)", listed.group(1))]

    lt_rel = "pkg/providers/launchtemplate/types.go"
    lt_body = func_body(provider.read(lt_rel), "Build", lt_rel)
    lt_kinds = [
        kebab(n)
        for n in re.findall(
            r"ResourceType:\s*ec2types\.ResourceType(\w+),\s*Tags:\s*utils\.EC2MergeTags\(b\.options\.Tags\)",
            lt_body,
        )
    ]
    if "launch-template" not in lt_kinds:
        raise SystemExit(f"{lt_rel}: launch template tag specification changed")

    evidence = [
        require(
            provider,
            "pkg/cloudprovider/cloudprovider.go",
            r"tags, err := utils\.GetTags\(nodeClass, nodeClaim, options\.FromContext\(ctx\)\.ClusterName\)"
            r".*?c\.instanceProvider\.Create\(ctx, nodeClass, nodeClaim, tags,",
            "CloudProvider.Create passes GetTags' map to the instance provider",
        ),
        require(
            provider,
            "pkg/providers/instance/instance.go",
            r"NewCreateFleetInputBuilder\(capacityType, tags,",
            "CreateFleet is built with those tags",
        ),
        require(
            provider,
            "pkg/providers/instance/instance.go",
            r"launchTemplateProvider\.EnsureAll\(ctx, nodeClass, nodeClaim, instanceTypes, capacityType, tags,",
            "launch templates are ensured with the same tags",
        ),
        require(
            provider,
            "pkg/providers/launchtemplate/launchtemplate.go",
            r"CreateAMIOptions\(ctx, nodeClass, lo\.Assign\(.*?\), tags\)",
            "EnsureAll hands them to the launch template options",
        ),
        require(
            provider,
            "pkg/providers/launchtemplate/launchtemplate.go",
            r"Tags:\s+tags,",
            "options.Tags = those tags (b.options.Tags in types.go)",
        ),
        require(
            provider,
            "pkg/controllers/nodeclass/instanceprofile.go",
            r"nodeClass\.InstanceProfileTags\(options\.FromContext\(ctx\)\.ClusterName, ip\.region\)",
            "the EC2NodeClass controller creates instance profiles with InstanceProfileTags",
        ),
        require(
            provider,
            "pkg/providers/instanceprofile/instanceprofile.go",
            r"Tags:\s+utils\.IAMMergeTags\(tags\)",
            "CreateInstanceProfile carries them",
        ),
        require(
            provider,
            "pkg/providers/launchtemplate/launchtemplate.go",
            r"func \(p \*DefaultProvider\) DeleteAll.*?tag:%s\", v1\.EKSClusterNameTagKey\)"
            r".*?tag:%s\", v1\.NodeClassTagKey\)",
            "Karpenter itself finds its launch templates by eks:eks-cluster-name + ec2nodeclass",
        ),
    ]

    def resource(sets: list[tuple[TagMap, str]]) -> dict:
        tags: dict[str, str] = {}
        sources = []
        for tag_set, how in sets:
            for key, value in tag_set.tags.items():
                tags.setdefault(key, value)
            sources.append({"tag_set": tag_set.name, "how": how})
        return {
            "tags": dict(sorted(tags.items())),
            "tag_keys": sorted(tags),
            "cluster_templated": sorted(k for k, v in tags.items() if CLUSTER in k or CLUSTER in v),
            "sources": sources,
        }

    resources: dict[str, dict] = {}
    for kind in fleet_kinds:
        how = f"CreateFleet TagSpecifications ResourceType {kind} ({fleet_rel} NewCreateFleetInputBuilder)"
        sets = [(nodeclaim, how)]
        if kind == "instance":
            sets.append((tagging, "CreateTags after the node registers"))
        resources[kind] = resource(sets)
    for kind in lt_kinds:
        how = (
            f"CreateLaunchTemplate TagSpecifications ResourceType {kind}"
            if kind == "launch-template"
            else f"LaunchTemplateData.TagSpecifications ResourceType {kind} (applied at launch)"
        )
        entry = resource([(nodeclaim, f"{how} ({lt_rel} Build)")])
        if kind in resources:
            resources[kind]["sources"].extend(entry["sources"])
        else:
            resources[kind] = entry
    if "spot-instances-request" in resources:
        resources["spot-instances-request"]["note"] = "only for spot capacity"
    resources["instance-profile"] = resource(
        [
            (
                profile,
                "iam.CreateInstanceProfile Tags (pkg/providers/instanceprofile/instanceprofile.go Create)",
            )
        ]
    )

    core_version = required_version(go_mod, "sigs.k8s.io/karpenter")
    return {
        "what": "Tags Karpenter applies to the AWS resources it creates, per resource kind. "
        "Placeholders: {cluster} = settings.clusterName, {nodepool}, {ec2nodeclass}, "
        "{nodeclaim}, {node-name}, {region}.",
        "generated_by": "tools/karpenter_tags.py",
        "source": {
            "repository": PROVIDER_URL,
            "tag": tag,
            "commit": provider.commit(),
        },
        "modules": {
            module: {
                "repository": MODULE_URLS.get(module, module),
                "go_mod_version": required_version(go_mod, module),
                "commit": src.commit(),
            }
            for module, src in sorted(modules.items())
        },
        "core_karpenter_version": core_version,
        "tag_sets": {
            t.name: {
                "file": t.file,
                "function": t.function,
                "note": t.note,
                "tags": dict(sorted(t.tags.items())),
            }
            for t in (nodeclaim, tagging, profile)
        },
        "resources": dict(sorted(resources.items())),
        "constants": dict(sorted(consts.used.items())),
        "evidence": evidence,
    }


def record_path(version: str) -> Path:
    return DATA_DIR / f"resource-tags-v{version}.json"


def load_record(version: str) -> dict:
    return json.loads(record_path(version).read_text())


# --------------------------------------------------------------------------- comparisons


def mismatches(used: dict[str, dict[str, str | None]], record: dict) -> list[str]:
    """What code relies on vs the record: one line per tag that Karpenter does not apply.

    used maps a resource kind ("instance", "launch-template", ...) to {tag key: value};
    keys and values use the record's placeholders ({cluster}); a value of None means "any
    value" (a tag-key filter or a StringLike "*" condition).
    """
    problems = []
    for kind, tags in sorted(used.items()):
        applied = record["resources"].get(kind)
        if applied is None:
            problems.append(f"{kind}: Karpenter creates no such resource")
            continue
        for key, value in sorted(tags.items()):
            if key not in applied["tags"]:
                problems.append(
                    f"{kind}: tag {key!r} is not applied by Karpenter {record['source']['tag']} "
                    f"(it applies {', '.join(applied['tag_keys'])})"
                )
            elif value is not None and applied["tags"][key] != value:
                problems.append(
                    f"{kind}: tag {key!r} expected value {value!r}, Karpenter sets {applied['tags'][key]!r}"
                )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--provider", required=True, help="aws/karpenter-provider-aws git dir or checkout")
    parser.add_argument("--ref", help="tag to read from a git dir (e.g. v1.14.1)")
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="MODULE=PATH",
        help="source of a Go module whose constants are needed (git dir or checkout)",
    )
    parser.add_argument("--out", help="output file (default tests/data/karpenter/resource-tags-<ref>.json)")
    args = parser.parse_args(argv)

    provider = open_source(args.provider, args.ref)
    go_mod = provider.read("go.mod")
    modules = {}
    for spec in args.module:
        module, _, path = spec.partition("=")
        p = Path(path)
        is_git = not (p / ".git").exists() and (p / "HEAD").exists()
        modules[module] = Source(p, ref_for(required_version(go_mod, module)) if is_git else None)
    tag = args.ref or provider.commit()
    record = build_record(provider, modules, tag)
    out = Path(args.out) if args.out else record_path(tag.lstrip("v"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO) if out.is_relative_to(REPO) else out}")
    for kind, entry in record["resources"].items():
        print(f"  {kind}: {', '.join(entry['tag_keys'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
