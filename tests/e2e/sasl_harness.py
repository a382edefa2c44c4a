"""Helpers for the security e2e tests: a broker on a SASL_PLAINTEXT listener with SCRAM users
bootstrapped the way an operator does it (depot --add-scram before the first start)."""

import subprocess

from depot_harness import DEPOT_BIN, Broker, BrokerError

USERS = {"admin": "admin-secret", "alice": "alice-pw", "bob": "bob-pw"}


class SaslBroker(Broker):
    """Broker whose listener is SASL_PLAINTEXT; users (name -> password) get SCRAM-SHA-256 and
    SCRAM-SHA-512 credentials through `depot --add-scram` before the broker starts."""

    def __init__(self, settings=None, users=None, name="depot-sasl", iterations=4096):
        super().__init__(settings=settings, name=name, start=False)
        self.users = dict(USERS if users is None else users)
        args = [DEPOT_BIN, "--set", "log.dirs=%s" % self.data_dir]
        for u, pw in self.users.items():
            for mech in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
                args += ["--add-scram", "%s=[name=%s,password=%s,iterations=%d]"
                         % (mech, u, pw, iterations)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise BrokerError("--add-scram failed (%d): %s" % (r.returncode, r.stderr))
        self.start()

    def _args(self):
        args = super()._args()
        return [a.replace("listeners=PLAINTEXT://", "listeners=SASL_PLAINTEXT://") for a in args]
