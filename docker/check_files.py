#!/usr/bin/env python3
"""Fast checks of the container files, for every CI run (the full image build is
docker/smoke-test.sh): the Dockerfiles use known instructions, every file they COPY from the
build context exists, and compose.yaml is valid YAML with the pieces users rely on (health
checks, GPU reservation). The Kubernetes manifests have their own check: kubernetes/check.py."""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}
errors = []


def logical_lines(text):
    """Dockerfile lines with continuations joined and comments dropped."""
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        yield current + stripped
        current = ""
    if current:
        yield current


def check_dockerfile(path):
    text = path.read_text()
    lines = list(logical_lines(text))
    if not lines:
        errors.append(f"{path}: empty")
        return
    first = lines[0].split()[0].upper()
    if first not in ("FROM", "ARG"):
        errors.append(f"{path}: must start with FROM or ARG, not {first}")
    stages = 0
    for line in lines:
        instruction = line.split()[0].upper()
        if instruction not in INSTRUCTIONS:
            errors.append(f"{path}: unknown instruction {instruction!r} in {line!r}")
        if instruction == "FROM":
            stages += 1
        if instruction in ("COPY", "ADD") and "--from=" not in line:
            parts = [p for p in line.split()[1:] if not p.startswith("--")]
            for source in parts[:-1]:
                if not list(ROOT.glob(source)):
                    errors.append(f"{path}: COPY source {source!r} does not exist")
    # The dependency layer needs every workspace member's manifest.
    for manifest in sorted(ROOT.glob("crates/*/Cargo.toml")) + [ROOT / "tests" / "Cargo.toml"]:
        relative = manifest.relative_to(ROOT).as_posix()
        if not re.search(rf"^COPY\s+{re.escape(relative)}\s", text, re.M):
            errors.append(f"{path}: the dependency layer does not copy {relative}")
    if stages < 2:
        errors.append(f"{path}: expected a multi-stage build")
    for needed in ("HEALTHCHECK", "ENTRYPOINT", "EXPOSE", "USER"):
        if not any(l.upper().startswith(needed) for l in lines):
            errors.append(f"{path}: no {needed}")
    if not re.search(r"^USER\s+(?!root)\S+", text, re.M):
        errors.append(f"{path}: the image must not run as root")


def check_compose(path):
    doc = yaml.safe_load(path.read_text())
    services = doc.get("services", {})
    for name in ("ponder", "ponder-gpu"):
        service = services.get(name)
        if not service:
            errors.append(f"{path}: no service {name}")
            continue
        if "healthcheck" not in service:
            errors.append(f"{path}: {name} has no healthcheck")
        dockerfile = ROOT / service["build"].get("dockerfile", "Dockerfile")
        if not dockerfile.exists():
            errors.append(f"{path}: {name} builds from missing {dockerfile}")
    gpu = services.get("ponder-gpu", {})
    devices = gpu.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    if not any("gpu" in d.get("capabilities", []) for d in devices):
        errors.append(f"{path}: ponder-gpu reserves no GPU")


check_dockerfile(ROOT / "Dockerfile")
check_dockerfile(ROOT / "docker" / "Dockerfile.cuda")
check_compose(ROOT / "docker" / "compose.yaml")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print("container files: ok (Dockerfile, docker/Dockerfile.cuda, docker/compose.yaml)")
