"""`livingportrait keys generate`: CurveZMQ key pairs for a backend reachable from other machines."""
from __future__ import annotations

HELP = "Make CurveZMQ key pairs: one for the backend, one per client allowed to use it."


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    gen = sub.add_parser("generate", help="write NAME.key (public) and NAME.key_secret (private, mode 0600)",
                         description="Write NAME.key (public: give it away) and NAME.key_secret (private, "
                                     "mode 0600: keep it on this machine).")
    gen.add_argument("--out", required=True, metavar="DIR", help="folder for the key files (created 0700)")
    gen.add_argument("--name", default="client", help="file stem, e.g. server or the artist's machine "
                                                      "(default: client)")


def run(args) -> int:
    from ..server.security import generate_key_pair

    public, secret = generate_key_pair(args.out, args.name)
    print(f"public key: {public}  (give it away: a server's to its clients, a client's to the server's "
          "--authorized-keys folder)")
    print(f"secret key: {secret}  (mode 0600: keep it here; serve --server-key / render --client-key)")
    return 0
