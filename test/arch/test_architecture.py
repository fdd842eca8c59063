"""The architecture document is checked against the code.

docs/architecture.md holds the map of the core (`shared/`) as tiers, in a
block after the marker `<!-- architecture-tiers -->`:

    tier 1 core: core/errors core/value ...
    tier 2 catalog: catalog/schema ...

and a table row for every module. The rules, checked on every include of
every core file:
  - every module under shared/ is in exactly one tier, and every module named
    in the tiers exists (a new file must be placed; a deleted one removed);
  - every module has its row in the module table;
  - an include points to the same tier or a lower one, never up;
  - the includes between modules form no cycle.
The hosts (pg_ext/, sqlite_ext/) stand above every tier and may include any
core header; the core may include no host file (cmake/host_headers and
test/guard check that at compile time).

The checker is a function of a source tree, so the test of the test runs it
on a copy with a deliberately wrong include and a module left out of the map.
"""
import os
import re
import shutil
import sys
import tempfile
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
MARKER = "<!-- architecture-tiers -->"
TIER = re.compile(r"^tier (\d+) ([a-z]+):\s*(.*)$")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)


def read_tiers(doc_text):
    """{module: (tier number, tier name)} from the block after MARKER."""
    if MARKER not in doc_text:
        raise ValueError(f"docs/architecture.md has no {MARKER} block")
    block = doc_text.split(MARKER, 1)[1].split("```", 2)[1]
    tiers, problems = {}, []
    for line in block.splitlines():
        m = TIER.match(line.strip())
        if not m:
            continue
        for module in m.group(3).split():
            if module in tiers:
                problems.append(f"{module} is in two tiers")
            tiers[module] = (int(m.group(1)), m.group(2))
    return tiers, problems


def core_modules(root):
    """{module: [files]} for every .hpp/.cpp under shared/<folder>/."""
    mods = {}
    core = os.path.join(root, "shared")
    for dirpath, _, files in os.walk(core):
        for f in files:
            if f.endswith((".hpp", ".cpp")):
                path = os.path.join(dirpath, f)
                module = os.path.relpath(path, core).rsplit(".", 1)[0].replace(os.sep, "/")
                mods.setdefault(module, []).append(path)
    return mods


def find_cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def check(root):
    """Every way the tree breaks the documented architecture, as sentences."""
    doc = open(os.path.join(root, "docs", "architecture.md"), encoding="utf-8").read()
    tiers, problems = read_tiers(doc)
    mods = core_modules(root)
    for m in sorted(mods):
        if m not in tiers:
            problems.append(f"shared/{m} is in no tier of docs/architecture.md")
        if f"`{m}`" not in doc and f"`{m}.hpp" not in doc and f"`{m}.cpp" not in doc:
            problems.append(f"shared/{m} has no row in the module table of docs/architecture.md")
    for m in sorted(tiers):
        if m not in mods:
            problems.append(f"docs/architecture.md places {m}, which is not a file of shared/")
    graph = {}
    for m, files in sorted(mods.items()):
        for path in files:
            for inc in INCLUDE.findall(open(path, encoding="utf-8").read()):
                target = inc.rsplit(".", 1)[0]
                if target not in mods:
                    problems.append(f"{os.path.relpath(path, root)} includes \"{inc}\", "
                                    "which is not a core module")
                    continue
                if target == m:
                    continue
                graph.setdefault(m, set()).add(target)
                if m in tiers and target in tiers and tiers[target][0] > tiers[m][0]:
                    problems.append(
                        f"{os.path.relpath(path, root)} (tier {tiers[m][0]} {tiers[m][1]}) includes "
                        f"{inc} (tier {tiers[target][0]} {tiers[target][1]}): an include may not "
                        "point up")
    cycle = find_cycle(graph)
    if cycle:
        problems.append("the includes form a cycle: " + " -> ".join(cycle))
    return problems


class Architecture(unittest.TestCase):
    def test_the_code_matches_the_documented_map(self):
        self.assertEqual(check(ROOT), [])


class TestOfTheTest(unittest.TestCase):
    """The checker fails on each kind of break, in a copy of the tree."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="envdb-arch-")
        shutil.copytree(os.path.join(ROOT, "shared"), os.path.join(self.dir, "shared"))
        shutil.copytree(os.path.join(ROOT, "docs"), os.path.join(self.dir, "docs"))

    def tearDown(self):
        shutil.rmtree(self.dir)

    def edit(self, rel, fn):
        path = os.path.join(self.dir, rel)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(fn(text))

    def test_an_include_pointing_up_fails(self):
        self.edit("shared/core/errors.cpp",
                  lambda t: t.replace('#include "core/errors.hpp"\n',
                                      '#include "core/errors.hpp"\n#include "surface/api.hpp"\n', 1))
        problems = check(self.dir)
        self.assertTrue(any("core/errors.cpp" in p and "may not point up" in p for p in problems),
                        problems)

    def test_a_cycle_within_a_tier_fails(self):
        self.edit("shared/core/clock.hpp",
                  lambda t: t.replace('#include "core/cpp_only.hpp"\n',
                                      '#include "core/cpp_only.hpp"\n#include "core/ids.hpp"\n', 1))
        problems = check(self.dir)
        self.assertTrue(any("cycle" in p for p in problems), problems)

    def test_a_module_missing_from_the_map_fails(self):
        with open(os.path.join(self.dir, "shared", "core", "stray.hpp"), "w") as f:
            f.write("#pragma once\n")
        problems = check(self.dir)
        self.assertIn("shared/core/stray is in no tier of docs/architecture.md", problems)

    def test_a_mapped_module_that_is_gone_fails(self):
        os.remove(os.path.join(self.dir, "shared", "core", "clock.cpp"))
        os.remove(os.path.join(self.dir, "shared", "core", "clock.hpp"))
        problems = check(self.dir)
        self.assertTrue(any("places core/clock" in p for p in problems), problems)


if __name__ == "__main__":
    sys.exit(unittest.main())
