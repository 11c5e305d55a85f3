#!/usr/bin/env python3
"""Fails when an #include runs against maild's module layering.

A module may include only itself and modules of a lower layer; modules of
one layer never include each other. The layers, lowest first, are below
(docs/architecture.md draws them). Run by the build (every source change)
and by ctest as build.module_arrows.

usage: check_module_arrows.py SOURCE_ROOT [STAMP_FILE]
"""
import pathlib
import re
import sys

# module -> layer. include/maild/<module>/ and src/<module>/ are the same module.
LAYERS = {
    "core": 0,
    "config": 1,
    "store": 2,
    "dns": 3,
    "net": 4,
    "smtp": 5,
    "pop3": 5,
    "delivery": 6,
    "reverse": 7,
    "policy": 8,
    "quarantine": 8,
    "daemon": 9,
}
# mailctl talks to the store only: no protocol, no Asio.
ADMIN_MAY_INCLUDE = {"core", "config", "store"}

INCLUDE = re.compile(r'^\s*#\s*include\s+"(?:maild/)?([a-z0-9_]+)/[^"]+"', re.MULTILINE)


def module_of(path, root):
    parts = path.relative_to(root).parts
    if parts[0] == "include":
        return parts[2]  # include/maild/<module>/...
    return parts[1]  # src/<module>/...


def allowed(source_module, target_module):
    if target_module == source_module:
        return True
    if source_module == "admin":
        return target_module in ADMIN_MAY_INCLUDE
    if source_module not in LAYERS or target_module not in LAYERS:
        return False
    return LAYERS[target_module] < LAYERS[source_module]


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    problems = []
    files = sorted(
        p
        for base in (root / "src", root / "include" / "maild")
        for p in base.rglob("*")
        if p.suffix in (".cpp", ".hpp")
    )
    for path in files:
        source_module = module_of(path, root)
        if source_module not in LAYERS and source_module != "admin":
            problems.append(f"{path.relative_to(root)}: module '{source_module}' has no layer")
            continue
        text = path.read_text(encoding="utf-8")
        for match in INCLUDE.finditer(text):
            target = match.group(1)
            if target not in LAYERS and target != "admin":
                continue  # a folder of the module itself (admin's, store's sqlite/...)
            if not allowed(source_module, target):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(
                    f"{path.relative_to(root)}:{line}: {source_module} (layer "
                    f"{LAYERS.get(source_module, '-')}) includes {target} (layer "
                    f"{LAYERS.get(target, '-')}): the arrow runs the wrong way"
                )
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"module arrows: {len(problems)} include(s) against the layering", file=sys.stderr)
        return 1
    if len(sys.argv) > 2:
        pathlib.Path(sys.argv[2]).write_text(f"{len(files)} files checked\n")
    print(f"module arrows: {len(files)} files, every include runs one way")
    return 0


if __name__ == "__main__":
    sys.exit(main())
