"""`edgecls archs`: the architectures edgecls builds, and whether their ImageNet weights are here and from where."""

from __future__ import annotations

NAME = "archs"
HELP = "list the architectures edgecls builds and where their ImageNet weights come from"


def add_arguments(p) -> None:
    pass


def run(a) -> int:
    from ..models import ARCHS
    from ..models.registry import weights_status

    for arch in ARCHS.values():
        here, where = weights_status(arch.name)
        print(f"{arch.name:24s} {arch.note:32s} {'weights here' if here else 'no weights  '}  {where}")
    return 0
