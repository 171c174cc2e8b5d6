"""A small kustomize for deploy/k8s: no kustomize binary comes from the registries CI reaches.

It does what those kustomizations use, as kustomize does it: resources (files and folders
with their own kustomization.yaml), namespace, labels (metadata only), images, and
patches as strategic merges (maps merge, a null removes a key, lists of named items merge
by name). Anything else in a kustomization.yaml is an error, so a new field cannot be
rendered wrong unnoticed. `python tests/kustomize_render.py DIR` prints the YAML stream.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import yaml

KNOWN_FIELDS = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "StorageClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition"}


def render(folder: Path) -> list[dict]:
    """The resources the kustomization in folder builds."""
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(spec) - KNOWN_FIELDS
    if unknown:
        raise ValueError(f"{folder}/kustomization.yaml uses {sorted(unknown)}: this renderer "
                         f"knows only {sorted(KNOWN_FIELDS)}")
    resources = [doc for entry in spec.get("resources", []) for doc in _load(folder / entry)]
    for patch in spec.get("patches", []):
        for doc in yaml.safe_load_all((folder / patch["path"]).read_text()):
            _target(resources, doc).update(merge(_target(resources, doc), doc))
    for doc in resources:
        _label(doc, spec.get("labels", []))
        _set_images(doc, spec.get("images", []))
        if "namespace" in spec and doc["kind"] not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = spec["namespace"]
    return resources


def _load(path: Path) -> list[dict]:
    if path.is_dir():
        return render(path)
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _target(resources: list[dict], patch: dict) -> dict:
    for doc in resources:
        if (doc["kind"], doc["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"]):
            return doc
    raise ValueError(f"a patch names {patch['kind']} {patch['metadata']['name']}, which no "
                     f"resource is")


def merge(base, patch):
    """A strategic merge of patch into base (a new object)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = merge(base.get(key), value)
        return merged
    if _named_list(base) and _named_list(patch):
        merged = {item["name"]: item for item in base}
        for item in patch:
            merged[item["name"]] = merge(merged.get(item["name"]), item)
        return list(merged.values())
    return copy.deepcopy(patch)


def _named_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(i, dict) and "name" in i for i in value)


def _label(doc: dict, labels: list[dict]) -> None:
    for entry in labels:
        doc["metadata"].setdefault("labels", {}).update(entry["pairs"])


def _set_images(doc: dict, images: list[dict]) -> None:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for image in images:
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"


if __name__ == "__main__":
    print(yaml.safe_dump_all(render(Path(sys.argv[1])), sort_keys=False), end="")
