"""deploy/: the Kubernetes manifests and the compose file validate offline against their
schemas, and they agree with the code: settings, commands, ports, stream names, images."""

from __future__ import annotations

import ast
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from dockerfile_parse import DockerfileParser

from dreamloop.cli import _parser
from dreamloop.settings import Settings, load_settings
from generation.blobs import ENDPOINT_ENV
from generation.keys import LANES, WORKER_GROUP, Keys
from generation.registry import load_registry
from tests.kustomize_render import merge, render

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DATA = Path(__file__).parent / "data"  # schemas from their projects: data/README.md
KUBERNETES = "1.37.0"
# The endpoint contract of issue 14 (metrics and health): each process serves /metrics,
# /livez and /readyz on DREAMLOOP_METRICS_PORT, the bot on 9100 and a worker on 9101.
PORTS = {"bot": 9100, "worker": 9101}
GPU_ONLY = {"torch", "diffusers", "transformers", "accelerate", "safetensors"}


def overlays() -> list[Path]:
    return [DEPLOY / "k8s" / "base", *sorted((DEPLOY / "k8s" / "overlays").iterdir())]


def rendered(folder: Path = DEPLOY / "k8s" / "overlays" / "example") -> list[dict]:
    return render(folder)


def one(docs: list[dict], kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in the manifests"
    return found[0]


def crd_schema(name: str) -> dict:
    crd = yaml.safe_load((DATA / f"keda.sh_{name}.yaml").read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return version["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("folder", overlays(), ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_and_keda_schemas(folder):
    keda = {"ScaledObject": crd_schema("scaledobjects"),
            "TriggerAuthentication": crd_schema("triggerauthentications")}
    docs = rendered(folder)
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            jsonschema.validate(doc, keda[doc["kind"]])
        else:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    assert {d["kind"] for d in docs} >= {"Deployment", "Job", "ConfigMap", "Service",
                                         "ScaledObject", "TriggerAuthentication"}


def test_the_validators_catch_a_wrong_field():
    deployment = one(rendered(), "Deployment", "dreamloop-bot")
    deployment["spec"]["replica"] = deployment["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)
    scaled = one(rendered(), "ScaledObject")
    del scaled["spec"]["scaleTargetRef"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(scaled, crd_schema("scaledobjects"))


def container(docs: list[dict], name: str) -> dict:
    return one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]


def test_keda_scales_each_lane_of_the_workers_model_on_its_stream_lag():
    docs = rendered()
    config = one(docs, "ConfigMap", "dreamloop-config")["data"]
    scaled = one(docs, "ScaledObject")
    worker = container(docs, scaled["spec"]["scaleTargetRef"]["name"])
    model = worker["command"][worker["command"].index("--model") + 1]
    keys = Keys(config["DREAMLOOP_REDIS_PREFIX"])
    triggers = scaled["spec"]["triggers"]
    assert sorted(t["metadata"]["stream"] for t in triggers) == sorted(
        keys.jobs(model, lane) for lane in LANES)
    for trigger in triggers:
        # KEDA's redis-streams metadata is a map of strings: its CRD checks none of it.
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["consumerGroup"] == WORKER_GROUP
        assert trigger["metadata"]["activationLagCount"] == "0"
        # The bot keeps DISPATCH_AHEAD entries per serving worker in a stream: a target
        # below that makes a backlog ask for more workers (worker-scaling.yaml).
        assert int(trigger["metadata"]["lagCount"]) < int(config["DREAMLOOP_DISPATCH_AHEAD"])
        auth = one(docs, "TriggerAuthentication", trigger["authenticationRef"]["name"])
        assert {p["parameter"] for p in auth["spec"]["secretTargetRef"]} == {"address",
                                                                              "password"}
    assert scaled["spec"]["minReplicaCount"] == 0
    load_registry(None, Path("/nonexistent")).get(model)  # a model the registry has


def test_probes_ports_and_gpu_follow_the_endpoint_contract():
    docs = rendered()
    for name, process in (("dreamloop-bot", "bot"), ("dreamloop-worker-sdxl", "worker")):
        spec = container(docs, name)
        port = PORTS[process]
        assert spec["ports"] == [{"name": "metrics", "containerPort": port}]
        assert {"name": "DREAMLOOP_METRICS_PORT", "value": str(port)} in spec["env"]
        assert spec["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert spec["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
    worker = container(docs, "dreamloop-worker-sdxl")
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert worker["startupProbe"]["httpGet"]["path"] == "/readyz"
    bot = one(docs, "Deployment", "dreamloop-bot")["spec"]
    assert (bot["replicas"], bot["strategy"]["type"]) == (1, "Recreate")


def secret_refs(value) -> list[dict]:
    if isinstance(value, dict):
        own = [value["secretKeyRef"]] if "secretKeyRef" in value else []
        return own + [r for v in value.values() for r in secret_refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in secret_refs(v)]
    return []


def test_secrets_are_referenced_and_the_readme_makes_every_key():
    docs = rendered()
    assert not [d for d in docs if d["kind"] == "Secret"], "a Secret is inlined"
    keys = {r["key"] for r in secret_refs(docs)} | {
        r["key"] for d in docs if d["kind"] == "TriggerAuthentication"
        for r in d["spec"]["secretTargetRef"]}
    assert {r["name"] for r in secret_refs(docs)} == {"dreamloop-secrets"}
    readme = (DEPLOY / "README.md").read_text()
    command = readme[readme.index("create secret generic dreamloop-secrets"):]
    command = command[:command.index("```")]
    assert {k for k in keys if f"--from-literal={k}=" not in command} == set()


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_validates_against_the_compose_specification():
    schema = json.loads((DATA / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(compose())
    broken = compose()
    broken["services"]["bot"]["restart"] = {"policy": "always"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(broken)


def test_compose_services_wait_for_migrations_and_check_readiness():
    services = compose()["services"]
    for name in ("bot", "worker"):
        service = services[name]
        assert service["depends_on"]["migrate"] == {"condition":
                                                    "service_completed_successfully"}
        assert service["environment"]["DREAMLOOP_METRICS_PORT"] == str(PORTS[name])
        assert f"127.0.0.1:{PORTS[name]}/readyz" in " ".join(service["healthcheck"]["test"])
        assert service["restart"] == "unless-stopped"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    redis = " ".join(services["redis"]["command"])
    for flags in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert flags in redis
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    models = services["worker"]["environment"]["HF_HOME"]
    assert f"models:{models}" in services["worker"]["volumes"]


def dockerfile(name: str) -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO((DEPLOY / name).read_bytes()))


def deploy_commands() -> list[list[str]]:
    """Every dreamloop command line the deploy files run."""
    commands = [s["command"] for s in compose()["services"].values()
                if isinstance(s.get("command"), list) and s["command"][0] == "dreamloop"]
    for doc in rendered():
        pod = doc.get("spec", {}).get("template", {}).get("spec", {})
        commands += [c["command"] for c in pod.get("containers", [])]
    for name in ("Dockerfile.bot", "Dockerfile.worker"):
        commands.append(json.loads(_cmd(dockerfile(name))))
    return commands + readme_commands()


def readme_commands() -> list[list[str]]:
    """The dreamloop commands deploy/README.md runs in a container: after the service, the
    image or kubectl exec's '--'."""
    blocks = re.findall(r"```sh\n(.+?)```", (DEPLOY / "README.md").read_text(), re.DOTALL)
    commands = []
    for line in "\n".join(blocks).splitlines():
        words = shlex.split(line, comments=True)
        starts = [i for i, w in enumerate(words[1:], 1) if w == "dreamloop"
                  and words[i - 1] in ("bot", "--", "dreamloop-worker:latest")]
        commands += [words[i:] for i in starts]
    return commands


def _cmd(parser: DockerfileParser) -> str:
    return next(i["value"] for i in reversed(parser.structure) if i["instruction"] == "CMD")


def test_every_command_in_the_deploy_files_is_a_dreamloop_command():
    commands = deploy_commands()
    assert {c[1] for c in commands} >= {"bot", "worker", "migrate"}
    for command in commands:
        assert command[0] == "dreamloop"
        _parser().parse_args(command[1:])  # exits (SystemExit) on an unknown command or flag


def deploy_texts() -> dict[Path, str]:
    return {path: path.read_text() for path in sorted(DEPLOY.rglob("*"))
            if path.is_file() and path.suffix != ".json"}


def test_every_dreamloop_variable_in_deploy_is_a_setting_and_documented():
    settings = {"DREAMLOOP_" + name.upper() for name in Settings.model_fields}
    known = settings | {ENDPOINT_ENV}
    used = {(var, path.name) for path, text in deploy_texts().items()
            for var in re.findall(r"DREAMLOOP_[A-Z0-9_]+", text)}
    assert {(var, where) for var, where in used if var not in known} == set()
    example = (DEPLOY / ".env.example").read_text()
    assert {var for var in known if var not in example} == set()


def test_the_images_copy_every_package_and_run_as_a_user():
    packages = {p.rstrip("*") for p in tomllib.loads((ROOT / "pyproject.toml").read_text())
                ["tool"]["setuptools"]["packages"]["find"]["include"]}
    for name in ("Dockerfile.bot", "Dockerfile.worker"):
        steps = [(i["instruction"], i["value"]) for i in dockerfile(name).structure]
        copied = {v.split()[0] for k, v in steps if k == "COPY"}
        assert packages <= copied, f"{name} leaves out {packages - copied}"
        assert all((ROOT / source).exists() for source in copied)
        users = [v for k, v in steps if k == "USER"]
        assert users == ["dreamloop"] and steps.index(("USER", "dreamloop")) > max(
            i for i, (k, _) in enumerate(steps) if k == "RUN")


def test_the_worker_image_takes_the_torch_build_of_its_cuda():
    parser = dockerfile("Dockerfile.worker")
    text = (DEPLOY / "Dockerfile.worker").read_text()
    cuda = re.search(r"ARG CUDA_VERSION=(\d+)\.(\d+)", text).groups()
    assert parser.args["TORCH_INDEX"] == f"cu{cuda[0]}{cuda[1]}"
    assert "download.pytorch.org/whl/${TORCH_INDEX}" in text
    assert parser.envs["HF_HOME"] == "/models" and "/models" in text.split("VOLUME")[1]


# The bot's image has no torch (deploy/bot_requirements.py): import what the bot runs and
# read every project module that came with it, function bodies too, for GPU-only imports.
# dreamloop/cli.py imports torch inside the GPU commands: read the bot image's commands'
# handlers there, and the cli functions they call.
BOT_IMAGE_COMMANDS = ("bot", "migrate", "sync-commands")
BOT_IMPORTS = """
import importlib, json, pkgutil, sys
import bot, dreamloop.bot_runner, dreamloop.cli, dreamloop.services, db.migrate
for module in pkgutil.iter_modules(bot.__path__):
    importlib.import_module("bot." + module.name)
print(json.dumps({name: getattr(m, "__file__", None) for name, m in sys.modules.items()}))
"""


def imported_names(tree: ast.AST) -> set[str]:
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    return {name.split(".")[0] for name in names}


def cli_imports(handler: str) -> set[str]:
    """What a cli function imports, with the cli functions it calls."""
    functions = {n.name: n for n in ast.parse((ROOT / "dreamloop" / "cli.py").read_text()).body
                 if isinstance(n, ast.FunctionDef)}
    seen, todo, names = set(), [handler], set()
    while todo:
        function = functions[todo.pop()]
        seen.add(function.name)
        names |= imported_names(function)
        todo += [n.id for n in ast.walk(function) if isinstance(n, ast.Name)
                 and n.id in functions and n.id not in seen]
    return names


def test_the_bot_runs_without_the_gpu_stack():
    loaded = json.loads(subprocess.run([sys.executable, "-c", BOT_IMPORTS], cwd=ROOT,
                                       check=True, capture_output=True, text=True).stdout)
    assert GPU_ONLY.isdisjoint(name.split(".")[0] for name in loaded)
    # Our own modules only: a virtualenv inside the checkout (as CI makes) holds the rest.
    ours = [Path(f) for f in loaded.values() if f and Path(f).suffix == ".py"
            and Path(f).is_relative_to(ROOT) and not Path(f).is_relative_to(ROOT / ".venv")
            and Path(f) != ROOT / "dreamloop" / "cli.py"]
    gpu = {str(p.relative_to(ROOT)): imported_names(ast.parse(p.read_text())) & GPU_ONLY
           for p in ours}
    gpu |= {command: cli_imports(_parser().parse_args([command]).handler.__name__) & GPU_ONLY
            for command in BOT_IMAGE_COMMANDS}
    assert {where: names for where, names in gpu.items() if names} == {}
    assert cli_imports("_run_worker") & GPU_ONLY  # the reading sees lazy imports
    script = subprocess.run([sys.executable, DEPLOY / "bot_requirements.py",
                             ROOT / "pyproject.toml"], check=True, capture_output=True, text=True)
    wanted = script.stdout.split()
    assert not [d for d in wanted if re.match(r"[a-z]+", d).group() in GPU_ONLY]
    assert any(d.startswith("discord.py") for d in wanted)


def documented_values() -> dict[str, str]:
    """.env.example's settings, the commented-out examples as if they were uncommented."""
    text = (DEPLOY / ".env.example").read_text()
    return dict(re.findall(r"^(?:# )?(DREAMLOOP_[A-Z0-9_]+)=(.*)$", text, re.MULTILINE))


def test_the_documented_and_configured_values_are_valid_settings(monkeypatch):
    for name in [n for n in os.environ if n.startswith("DREAMLOOP_")]:
        monkeypatch.delenv(name)
    values = documented_values()
    assert values.pop("DREAMLOOP_MODELS_FILE")  # an example path: the setting needs a file
    values |= one(rendered(), "ConfigMap", "dreamloop-config")["data"]
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.dispatch_ahead == int(values["DREAMLOOP_DISPATCH_AHEAD"])
    assert len(values) > 20


def test_the_renderer_merges_patches_as_kustomize_does():
    base = {"a": {"b": 1, "c": 2}, "named": [{"name": "x", "v": 1}, {"name": "y"}], "n": [1]}
    patch = {"a": {"c": None, "d": 3}, "named": [{"name": "x", "v": 2}], "n": [2]}
    assert merge(base, patch) == {"a": {"b": 1, "d": 3}, "n": [2],
                                  "named": [{"name": "x", "v": 2}, {"name": "y"}]}
    docs = rendered()
    worker = one(docs, "Deployment", "dreamloop-worker-sdxl")["spec"]["template"]["spec"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "dreamloop-model-cache"}
            } in worker["volumes"]
    assert worker["containers"][0]["image"] == "registry.example.com/dreamloop/worker:0.1.0"
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {
        "dreamloop"}
