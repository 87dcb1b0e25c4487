-- Make the lake's PL/Python modules importable in this session. The modules' source is served by
-- lake_internal._plpython_source(), which the migrations generate from plpython/; an import hook on
-- sys.meta_path loads them from there, so the same files are unit-tested outside the database
-- and run inside it. Called once per session by the first lake PL/Python function that runs.
CREATE FUNCTION lake_internal._plpy_bootstrap()
RETURNS void
LANGUAGE plpython3u
AS $$
import importlib.abc
import importlib.util
import sys


class LakeModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds lake_* modules in lake_internal._plpython_source()."""

    def __init__(self, plpy_module):
        self._plpy = plpy_module
        self._plan = plpy_module.prepare(
            "SELECT source, is_package FROM lake_internal._plpython_source($1)", ["text"])
        self._pending = {}

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith("lake_"):
            return None
        row = self._plpy.execute(self._plan, [fullname])
        if not row or row[0]["source"] is None:
            return None
        self._pending[fullname] = row[0]["source"]
        return importlib.util.spec_from_loader(
            fullname, self, origin="lake:" + fullname, is_package=row[0]["is_package"])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        source = self._pending.pop(module.__name__)
        exec(compile(source, module.__spec__.origin, "exec"), module.__dict__)


if not any(isinstance(f, LakeModuleFinder) or type(f).__name__ == "LakeModuleFinder"
           for f in sys.meta_path):
    sys.meta_path.append(LakeModuleFinder(plpy))
GD["lake_ready"] = True
$$;
REVOKE ALL ON FUNCTION lake_internal._plpy_bootstrap() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION lake_internal._plpy_bootstrap() TO lake_owner;
