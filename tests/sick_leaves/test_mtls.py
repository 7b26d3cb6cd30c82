"""The national file's client certificate: ``sick-leaves import`` over mutual TLS to a producer
that demands one (the stub behind TLS, its own test CA)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.delivery.rivta.test_tls import Pki, pki, server_context
from tests.peers.rivta_stub import UNIT, rivta_stub
from tests.sick_leaves.conftest import LOGICAL_ADDRESS, run_cli

__all__ = ["pki"]  # the fixture, shared with the client's own TLS tests


def test_import_shows_the_configured_certificate(tmp_path: Path, pki: Pki) -> None:
    with rivta_stub(tls=server_context(pki)) as stub:
        contract = {
            "base_url": stub.url,
            "logical_addresses": {UNIT: LOGICAL_ADDRESS},
            "tls": {
                "cert_file": str(pki.client_cert),
                "key_file": str(pki.client_key),
                "ca_file": str(pki.ca),
            },
        }
        path = tmp_path / "national.json"
        path.write_text(json.dumps({"contracts": {"ListActiveSickLeavesForCareUnit": contract}}))
        env = {"REKO_NATIONAL_FILE": str(path), "REKO_DATA_DIR": str(tmp_path / "data")}
        done = run_cli("sick-leaves", "import", "--unit", UNIT, "-f", "json", env=env)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["certificates"] == 2
        assert stub.url.startswith("https://")
        assert stub.rejected == []
        assert len(stub.exchanges) == 1
        # Its server certificate signed by a CA the file does not name: refused, not imported.
        contract["tls"]["ca_file"] = str(pki.client_cert)  # type: ignore[index]
        path.write_text(json.dumps({"contracts": {"ListActiveSickLeavesForCareUnit": contract}}))
        refused = run_cli("sick-leaves", "import", "--unit", UNIT, env=env)
        # A certificate refused stays refused: not retried, exit 1, the contract named.
        assert refused.returncode == 1, refused.stderr
        (line,) = [x for x in refused.stderr.splitlines() if x.startswith("reko-fhir:")]
        assert line.startswith("reko-fhir: ListActiveSickLeavesForCareUnit: "), line
        assert "the TLS connection was refused" in line, line
        assert "CERTIFICATE_VERIFY_FAILED" in line, line
        assert "Traceback" not in refused.stderr
        assert len(stub.exchanges) == 1
