#!/usr/bin/env python3
"""The module-arrow checker fails on every kind of back arrow and passes a clean tree.

usage: test_module_arrows.py PATH_TO_check_module_arrows.py
"""
import pathlib
import subprocess
import sys
import tempfile
import unittest

CHECKER = None


def check(files):
    with tempfile.TemporaryDirectory() as root:
        for name, text in files.items():
            path = pathlib.Path(root) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return subprocess.run([sys.executable, CHECKER, root], capture_output=True, text=True)


CLEAN = {
    "include/maild/core/units.hpp": "#pragma once\n",
    "include/maild/store/store.hpp": '#include "maild/config/settings.hpp"\n',
    "src/smtp/session.cpp": '#include "smtp/session.hpp"\n#include "net/connection.hpp"\n',
    "src/delivery/courier.cpp": '#include "smtp/client.hpp"\n#include "dns/resolver.hpp"\n',
    "src/reverse/source_get.cpp": '#include "delivery/dsn.hpp"\n#include "smtp/extension.hpp"\n',
    "src/daemon/main.cpp": '#include "reverse/retriever.hpp"\n',
    "src/admin/user.cpp": '#include "maild/store/store.hpp"\n#include "output.hpp"\n',
}


class Checker(unittest.TestCase):
    def test_a_clean_tree_passes(self):
        result = check(CLEAN)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_back_arrows_fail(self):
        for name, include in [
            ("src/smtp/client.hpp", "delivery/parcel.hpp"),  # up one layer
            ("src/smtp/session.cpp", "reverse/token.hpp"),  # up two
            ("src/delivery/queue_manager.cpp", "reverse/token.hpp"),
            ("src/pop3/session.cpp", "smtp/sasl.hpp"),  # sideways in one layer
            ("src/net/tls.cpp", "smtp/reply.hpp"),
            ("include/maild/store/store.hpp", "maild/smtp/x.hpp"),  # public header upwards
            ("src/admin/queue.cpp", "net/connection.hpp"),  # mailctl is store-only
            ("src/core/ids.cpp", "maild/config/settings.hpp"),
        ]:
            with self.subTest(name=name, include=include):
                result = check({**CLEAN, name: f'#include "{include}"\n'})
                self.assertEqual(result.returncode, 1, result.stdout)
                self.assertIn(name, result.stderr)
                self.assertIn("the wrong way", result.stderr)

    def test_a_folder_without_a_layer_fails(self):
        result = check({**CLEAN, "src/webui/page.cpp": "\n"})
        self.assertEqual(result.returncode, 1)
        self.assertIn("has no layer", result.stderr)


if __name__ == "__main__":
    CHECKER = sys.argv.pop(1)
    unittest.main()
