"""The operators' load test as a Locust file (issue 14): the same workload as ``ops/loadtest.py``
(claims, QR + quote + redeem, refunds, day lists, in its default mix), driven by Locust, so
that one master and workers on several machines drive one run and Locust merges their
percentiles.

    # on the master (it seeds, hands the data set out, merges, checks the ledger at the end)
    locust -f ops/locustfile.py --master --headless --expect-workers 2 -u 64 -r 16 -t 60s \\
        --host http://127.0.0.1:8080 --database-url ... --id-hash-key-b64 ... --csv out/run
    # on each worker machine
    locust -f ops/locustfile.py --worker --master-host MASTER

1. **Seeding** (the master, or a single local process): ``python -m ops.loadtest --seed-only``
   in a child process, the same COPY seeding as the load test (tagged ``LT-…``, so
   ``scripts/loadtest --clean`` removes it); the data set goes to each worker when its test
   starts, each worker getting its own share of the unclaimed certificates (no two claim one).
2. **Users** are tills: each signs in as one of the seeded terminals and loops over the mix;
   citizens sign in through the demo's development identity provider. Each request is named by
   its operation (``claim``, ``qr``, ``quote``, ``redeem``, ``refund``, ``day``), so Locust's
   table and ``--csv`` files give per-operation percentiles, merged over every worker; a
   refusal counts as a failure under its error code. The bodies are those of the one API
   client (``client/``): each answer is decoded into its ``client.wire`` Struct and each
   refusal read by ``client.http.Answer.refusal`` (an answer off its schema is a failure too),
   so the Locust run and the load test speak the same contract; the requests go through
   Locust's own HTTP client, which times them and runs on gevent, where the asyncio
   ``TillClient`` and ``CitizenClient`` cannot.
3. **The ledger check** at the end, on the master: ``python -m ops.loadtest --check-only``;
   the exit status is its verdict (1 on any violation), as the load test's; refusals are
   counted in Locust's failures under their codes, and do not fail the run.
   ``--report-dir`` also gets ``workers.json``: the requests each worker reported.

Locust runs on gevent, so everything asyncio (seeding, the ledger check) runs in a child
process, never in the Locust process itself.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import uuid
from collections import deque
from pathlib import Path
from typing import Any, TypeVar

import gevent.event
from locust import FastHttpUser, between, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from client.http import Answer, BadAnswer
from client.wire import AccessToken, Claimed, DayReport, DevAssertion, QrToken, Quote, Redemption
from ops.loadtest import DEFAULT_MIX

DATA: dict[str, Any] = {}
READY = gevent.event.Event()
WORKER_REQUESTS: dict[str, int] = {}
UNCLAIMED: deque[list[str]] = deque()
T = TypeVar("T")


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--database-url", env_var="VOUCHER_DATABASE_URL", default="")
    parser.add_argument("--id-hash-key-b64", env_var="VOUCHER_ID_HASH_KEY", default="")
    parser.add_argument("--campaign", default="liaocheng-demo")
    parser.add_argument("--certificates", type=int, default=20_000)
    parser.add_argument("--merchants", type=int, default=100)
    parser.add_argument("--terminals", type=int, default=64)
    parser.add_argument("--mix", default=",".join(f"{k}={v}" for k, v in DEFAULT_MIX.items()))
    parser.add_argument("--now", default="", help="the server's time, when not the wall clock")
    parser.add_argument("--report-dir", default="", help="workers.json and the ledger check")


def _loadtest(environment: Environment, *args: str) -> subprocess.CompletedProcess[str]:
    options = environment.parsed_options
    assert options is not None
    command = [
        sys.executable, "-m", "ops.loadtest", "--server", environment.host or "",
        "--database-url", options.database_url, *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603


def _seed(environment: Environment) -> dict[str, Any]:
    options = environment.parsed_options
    assert options is not None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "seeded.json"
        done = _loadtest(
            environment,
            "--id-hash-key-b64", options.id_hash_key_b64, "--campaign", options.campaign,
            "--certificates", str(options.certificates), "--merchants", str(options.merchants),
            "--terminals", str(options.terminals), "--seed-only", str(out),
            # its users are shops' tills: no house tickets to seed (ops.loadtest's --tickets)
            "--tickets", "0",
            *(["--now", options.now] if options.now else []),
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"seeding failed: {done.stderr.strip() or done.stdout.strip()}")
        return dict(json.loads(out.read_text()))


@events.init.add_listener
def _init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):

        def take(environment: Environment, msg: Any, **_: Any) -> None:
            DATA.update(msg.data)
            READY.set()

        runner.register_message("voucher_data", take)
        return
    if isinstance(runner, MasterRunner):

        def hand_out(environment: Environment, msg: Any, **_: Any) -> None:
            """A worker's test started: its data set, with its share of the unclaimed."""
            share = [UNCLAIMED.popleft() for _ in range(min(len(UNCLAIMED), DATA["share"]))]
            data = {**DATA, "unclaimed": share}
            runner.send_message("voucher_data", data, client_id=msg.node_id)

        def reported(client_id: str, data: dict[str, Any], **_: Any) -> None:
            total = data.get("stats_total", {}).get("num_requests", 0)
            WORKER_REQUESTS[client_id] = WORKER_REQUESTS.get(client_id, 0) + int(total)

        runner.register_message("voucher_want", hand_out)
        events.worker_report.add_listener(reported)
    seeded = _seed(environment)
    options = environment.parsed_options
    workers = max(1, int(getattr(options, "expect_workers", 1) or 1))
    UNCLAIMED.extend(seeded.pop("unclaimed"))
    DATA.update(seeded, share=len(UNCLAIMED) // workers)
    if not isinstance(runner, MasterRunner):  # a single local process drives it all
        DATA["unclaimed"] = list(UNCLAIMED)
        READY.set()


@events.test_start.add_listener
def _want_data(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        environment.runner.send_message("voucher_want")


@events.quitting.add_listener
def _check_ledger(environment: Environment, **_: Any) -> None:
    """The load test's ledger check, once, where the run is merged (the master)."""
    if isinstance(environment.runner, WorkerRunner):
        return
    done = _loadtest(environment, "--check-only")
    print(done.stdout.strip(), file=sys.stderr)
    options = environment.parsed_options
    if options is not None and options.report_dir:
        folder = Path(options.report_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "workers.json").write_text(json.dumps(WORKER_REQUESTS))
        (folder / "ledger.txt").write_text(done.stdout)
    # the exit status is the ledger's verdict, as the load test's: refusals (a citizen out of
    # vouchers, a bill too small) are the workload's outcomes, counted under their codes
    environment.process_exit_code = 0 if done.returncode == 0 else 1


def _mix(text: str) -> list[str]:
    ops = []
    for part in text.split(","):
        op, _, weight = part.partition("=")
        if op not in DEFAULT_MIX or not weight.isdigit():
            raise SystemExit(f"--mix takes {','.join(DEFAULT_MIX)} with whole weights")
        ops += [op] * int(weight)
    return ops


class Till(FastHttpUser):
    """A till of a seeded shop: claims (for the citizens at its counter), checkouts, refunds
    and the day list, in the load test's mix."""

    wait_time = between(0, 0)

    def on_start(self) -> None:
        if not READY.wait(timeout=120):
            raise RuntimeError("the master never sent the data set")
        self.rng = random.Random()
        terminal_id, secret = self.rng.choice(DATA["terminals"])
        answer = self._call("POST", "/v1/auth/terminal", "sign-in", AccessToken,
                            {"terminal_id": terminal_id, "secret": secret})  # fmt: skip
        self.till = {"Authorization": f"Bearer {answer.access_token}"} if answer else {}
        self.citizens: dict[str, dict[str, str]] = {}
        self.mine: deque[tuple[int, int]] = deque(maxlen=200)
        options = self.environment.parsed_options
        self.ops = _mix(options.mix if options is not None else "redeem=1")

    def _call(
        self,
        method: str,
        path: str,
        name: str,
        kind: type[T],
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> T | None:
        """One request named by its operation, its answer as ``kind`` (``client.wire``); a
        refusal is a failure under the server's code, no answer or one off its schema too."""
        with self.client.request(
            method, path, name=name, json=body, headers=headers or {}, catch_response=True
        ) as response:
            if not response.status_code:
                response.failure(f"no answer: {type(response.error).__name__}")
                return None
            answer = Answer(response.status_code, response.content or b"")
            if answer.status >= 400:
                response.failure(answer.refusal().code)
                return None
            try:
                found = answer.into(kind)
            except BadAnswer as exc:
                response.failure(f"bad answer: {exc}")
                return None
            response.success()
            return found

    def _citizen(self, number: str) -> dict[str, str] | None:
        if number not in self.citizens:
            found = self._call("POST", "/dev/idp/assertion", "sign-in", DevAssertion,
                               {"id_number": number})  # fmt: skip
            if not found:
                return None
            signed = self._call("POST", "/v1/auth/citizen", "sign-in", AccessToken,
                                {"assertion": found.assertion})  # fmt: skip
            if not signed:
                return None
            self.citizens[number] = {"Authorization": f"Bearer {signed.access_token}"}
        return self.citizens[number]

    @task
    def next_operation(self) -> None:
        {"claim": self.claim, "redeem": self.redeem, "refund": self.refund, "day": self.day}[
            self.rng.choice(self.ops)
        ]()

    def claim(self) -> None:
        if not DATA["unclaimed"]:
            return self.redeem()
        cert_no, number = DATA["unclaimed"].pop()
        citizen = self._citizen(number)
        if citizen and self._call("POST", "/v1/claims", "claim", Claimed,
                                  {"certificate_no": cert_no}, citizen):  # fmt: skip
            DATA["claimed"].append(number)
        return None

    def redeem(self) -> None:
        citizen = self._citizen(self.rng.choice(DATA["claimed"]))
        qr = citizen and self._call("POST", "/v1/wallet/qr", "qr", QrToken, None, citizen)
        if not qr:
            return
        bill = self.rng.randrange(200, 1_200) * 100
        quote = self._call("POST", "/v1/quote", "quote", Quote,
                           {"token": qr.token, "bill_fen": bill}, self.till)  # fmt: skip
        if not quote or quote.usable_count == 0:
            return
        body = {
            "token": qr.token,
            "bill_fen": bill,
            "receipt_no": f"LT-{uuid.uuid4().hex[:16]}",
            "voucher_count": self.rng.randint(1, quote.usable_count),
        }
        done = self._call("POST", "/v1/redemptions", "redeem", Redemption, body,
                          {**self.till, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        if done:
            self.mine.append((done.redemption_id, bill))

    def refund(self) -> None:
        if not self.mine:
            return self.redeem()
        redemption_id, bill = self.mine.popleft()
        remaining = 0 if self.rng.random() < 0.5 else self.rng.randrange(0, bill // 100) * 100
        self._call("POST", f"/v1/redemptions/{redemption_id}/refunds", "refund", Redemption,
                   {"remaining_bill_fen": remaining},
                   {**self.till, "Idempotency-Key": uuid.uuid4().hex})  # fmt: skip
        return None

    def day(self) -> None:
        self._call("GET", "/v1/merchant/day", "day", DayReport, None, self.till)
