"""Benchmark ``qr-verify``: offline QR pass checks per second on one core, as a device does
them (decode, key look-up, Ed25519 verify, window, door, revocation and entry checks).

``limit_rate`` is the raw Ed25519 verify rate of the same signed bytes with the same
library on the same core: the floor no pass check can beat. One in ten codes is forged
and must be refused (``checks.forged_accepted == 0``).

    python bench/qr_verify.py [--size 50000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from typing import Any


def run(size: int) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from linli.access import credentials

    rng = random.Random(7)
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    community, gate = uuid.uuid4(), uuid.uuid4()
    now = int(time.time())
    tokens, forged = [], set()
    for i in range(size):
        points = [gate] + [uuid.uuid4() for _ in range(rng.randint(0, 2))]
        rng.shuffle(points)
        claims = credentials.PassClaims(
            kid=1,
            community_id=community,
            pass_id=uuid.uuid4(),
            holder_id=uuid.uuid4(),
            kind=rng.choice(("resident", "visitor", "courier")),
            not_before=now - 60,
            not_after=now + 3600,
            entries=rng.choice((0, 0, 1, 5)),
            access_point_ids=tuple(points),
        )
        bad = i % 10 == 9
        tokens.append(credentials.sign_pass(other if bad else key, claims))
        if bad:
            forged.add(i)
    verifier = credentials.PassVerifier(
        community_id=community,
        access_point_id=gate,
        keys={1: credentials.public_bytes(key.public_key())},
    )
    for token in tokens[:200]:  # warm up
        verifier.check(token, now=time.time(), consume=False)

    accepted = refused_good = forged_accepted = 0
    started = time.perf_counter()
    clock = time.time()
    for i, token in enumerate(tokens):
        ok = verifier.check(token, now=clock, consume=False).ok
        if i in forged:
            forged_accepted += ok
        elif ok:
            accepted += 1
        else:
            refused_good += 1
    seconds = time.perf_counter() - started

    decoded = [credentials.decode_token(t) for t in tokens]
    public = key.public_key()
    verify_started = time.perf_counter()
    for item in decoded:
        assert item is not None
        _, body, signature = item
        try:
            public.verify(signature, credentials.DOMAIN + body)
        except Exception:  # the forged ones: refused, same cost
            pass
    limit_seconds = time.perf_counter() - verify_started
    rate, limit_rate = size / seconds, size / limit_seconds
    return {
        "name": "qr-verify",
        "size": size,
        "seconds": round(seconds, 3),
        "rate": round(rate, 1),
        "unit": "verifications/s/core",
        "limit_rate": round(limit_rate, 1),
        "ratio": round(rate / limit_rate, 4),
        "checks": {
            "accepted": accepted,
            "refused_good": refused_good,
            "forged_accepted": forged_accepted,
            "at_least_10000_per_s": rate >= 10_000,
        },
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=50_000, help="QR codes to check")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args(argv)
    result = run(args.size)
    print(json.dumps(result, ensure_ascii=False))
    if not args.json:
        print(f"{result['rate']} checks/s (limit {result['limit_rate']})", file=sys.stderr)


if __name__ == "__main__":
    main()
