"""The integration tests' fixtures (tests/integration/conftest.py) for the TSan run: the
same Durod, checks of every log (ThreadSanitizer reports included) and helpers."""
import importlib.util
import os
import sys

_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration", "conftest.py")
_spec = importlib.util.spec_from_file_location("duro_fixtures", _path)
duro_fixtures = importlib.util.module_from_spec(_spec)
sys.modules["duro_fixtures"] = duro_fixtures
_spec.loader.exec_module(duro_fixtures)

durod_factory = duro_fixtures.durod_factory
durods_checked = duro_fixtures.durods_checked
