"""`edgecls archs`: the architectures edgecls builds, and where their weights come from."""

from __future__ import annotations

NAME = "archs"
HELP = "list the architectures edgecls builds"


def add_arguments(p) -> None:
    pass


def run(a) -> int:
    from ..models import ARCHS

    for arch in ARCHS.values():
        weights = "offline ImageNet weights" if arch.local_weights else "weights from timm hub (online)"
        print(f"{arch.name:24s} {arch.note:32s} {weights}")
    return 0
