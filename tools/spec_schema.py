"""Write edgecls/runtime/spec.schema.json, the JSON Schema of a ModelSpec, from the msgspec declaration in edgecls/runtime/spec.py.

    python tools/spec_schema.py           # regenerate after changing a spec field
    python tools/spec_schema.py --check   # exit 1 when the committed file is out of date (tests/test_spec.py runs it)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from edgecls.runtime.spec import json_schema  # noqa: E402

TARGET = Path(__file__).resolve().parent.parent / "edgecls" / "runtime" / "spec.schema.json"


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python tools/spec_schema.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
