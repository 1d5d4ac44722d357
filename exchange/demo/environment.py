"""The settings `refuge demo` runs with unless the environment already names them. They are public (they are in
this file), so `refuge check` refuses every one of them in a real deployment."""

from __future__ import annotations

from exchange.settings import ROOT

DEMO_DATABASE = f"sqlite+aiosqlite:///{ROOT / 'refuge-demo.db'}"
# A fixed secret keeps the demo's sessions valid across its restarts.
DEMO_SECRET_KEY = "demo-only-secret-key-do-not-use-in-production"
# A fixed key pair, so the demo signs checkpoints of its ledger (and `refuge ledger verify` checks them) and says
# no warning about a missing signing key.
DEMO_LEDGER_SIGNING_KEY = "dfb60e10147f3873766fca40f7c02fe064c010db3682cdface972919740ebfeb"
DEMO_LEDGER_PUBLIC_KEY = "924125747ec8b041bc921b6e46540a848d3dd8bc1be628c247a4df492c7765dd"


def demo_environment(host: str, port: int) -> dict[str, str]:
    """Each variable the demo sets when it is not set already: short human logs, the demo's keys, its URL."""
    return {
        "DATABASE_URL": DEMO_DATABASE,
        "BASE_URL": f"http://{host}:{port}",
        "SECRET_KEY": DEMO_SECRET_KEY,
        "LEDGER_SIGNING_KEY": DEMO_LEDGER_SIGNING_KEY,
        "LEDGER_PUBLIC_KEY": DEMO_LEDGER_PUBLIC_KEY,
        "LOG_FORMAT": "console",
    }
