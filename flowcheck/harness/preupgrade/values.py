"""The few Helm values the check needs, read from the values file the upgrade will use.

The whole file goes to ``cilium upgrade --values`` untouched; the check only reads what decides how
the preflight release is installed (without kube-proxy its pods need the API server's address), the
``cluster.name`` it would set (which must be the name the cluster runs with), and refuses a file that
cannot be read before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from flowcheck.errors import InputError


@dataclass(frozen=True, slots=True)
class HelmValues:
    """What the check needs from the Helm values file."""

    path: Path
    kube_proxy_replacement: bool
    k8s_service_host: str | None
    k8s_service_port: str | None
    cluster_name: str | None = None  # `cluster.name`, when the file sets it


def read_values(path: Path) -> HelmValues:
    """Read the few keys the preflight release needs; a missing or malformed file is an ``InputError``."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the Helm values file: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of Helm values, got {type(data).__name__}")
    kpr = data.get("kubeProxyReplacement")
    host = data.get("k8sServiceHost")
    port = data.get("k8sServicePort")
    cluster = data.get("cluster")
    name = cluster.get("name") if isinstance(cluster, dict) else None
    return HelmValues(path, str(kpr).lower() in ("true", "strict"),
                      str(host) if host not in (None, "") else None, str(port) if port not in (None, "") else None,
                      str(name) if name not in (None, "") else None)
