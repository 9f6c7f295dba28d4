"""Audit the locked dependencies (requirements.lock) for known vulnerabilities with pip-audit.

pip-audit asks PyPI's JSON API (or OSV) for each pinned release's advisories. A network that cannot reach that
service makes pip-audit skip every package and still exit 0, which would read as "no vulnerabilities". So a
canary with a known advisory (requests 2.19.0, CVE-2018-18074) is audited first: when it comes back clean, the
advisory service is unreachable, and this script says so plainly instead of reporting a pass (exit 0 unless
AUDIT_STRICT=1, since CI on a closed network cannot audit at all). When the canary is caught, any advisory
against a locked dependency fails the run, naming the package, version, advisory and fixed versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CANARY = "requests==2.19.0"


def audit(requirements: Path) -> dict[str, object]:
    command = [
        sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--no-deps", "--disable-pip",
        "--format", "json", "--progress-spinner", "off",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if not done.stdout.strip():
        raise SystemExit(f"pip-audit failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def vulnerable(report: dict[str, object]) -> list[str]:
    found = []
    for dependency in report["dependencies"]:  # type: ignore[attr-defined]
        for vuln in dependency.get("vulns", []):
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            found.append(f"{dependency['name']} {dependency['version']}: {vuln['id']} (fixed in {fixes})")
    return found


def main() -> int:
    locked = Path(sys.argv[1] if len(sys.argv) > 1 else "requirements.lock")
    with tempfile.TemporaryDirectory() as folder:
        canary = Path(folder) / "canary.txt"
        canary.write_text(CANARY + "\n")
        reachable = bool(vulnerable(audit(canary)))
    report = audit(locked)
    count = len(report["dependencies"])  # type: ignore[arg-type]
    if not reachable:
        print(
            f"pip-audit: NOT AUDITED. {count} locked dependencies were read from {locked}, but the advisory service "
            f"is unreachable from this network (the canary {CANARY}, which has a known advisory, came back clean)."
        )
        return 1 if os.environ.get("AUDIT_STRICT") == "1" else 0
    found = vulnerable(report)
    skipped = [d["name"] for d in report["dependencies"] if d.get("skip_reason")]  # type: ignore[attr-defined]
    for line in found:
        print("vulnerable:", line)
    print(
        f"pip-audit: {count} locked dependencies, {len(found)} known vulnerabilities, {len(skipped)} not audited"
    )
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
