"""kernel_reset's pieces, in this process: what a fresh import of a library has, for a kernel
whose points imported it themselves; which loggers go back to a new logger's state. (The whole
reset, in real kernels, is tests/e2e/test_shared_kernels.py.)"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import numpy as np
import pytest

from labbook import kernel_reset


def _fresh_import(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_numpys_defaults_are_what_a_fresh_import_of_the_installed_numpy_has():
    fresh = _fresh_import("import json, numpy as np; o = np.get_printoptions();"
                          "print(json.dumps({'errors': np.geterr(), 'printing': {k: o[k] for k in o if k != 'override_repr'}}))")
    assert fresh["errors"] == kernel_reset.NUMPY_DEFAULTS["errors"]
    assert {k: v for k, v in kernel_reset.NUMPY_DEFAULTS["printing"].items() if k in fresh["printing"]} == fresh["printing"]


def test_torchs_defaults_are_what_a_fresh_import_of_the_installed_torch_has():
    fresh = _fresh_import("import json, torch; o = torch._tensor_str.PRINT_OPTS;"
                          "print(json.dumps({'printing': {k: getattr(o, k) for k in "
                          f"{list(kernel_reset.TORCH_PRINTING)!r}}}, 'matmul': torch.get_float32_matmul_precision()}}))")
    assert fresh == {"printing": kernel_reset.TORCH_PRINTING, "matmul": "highest"}


@pytest.fixture
def unrecorded(monkeypatch):
    """A kernel whose fresh state recorded no library: its points imported them."""
    monkeypatch.setattr(kernel_reset, "_FRESH", {"loggers": {}, "logging_disabled": logging.NOTSET})


def test_numpy_imported_by_a_point_gets_a_fresh_imports_settings_back(unrecorded):
    before = np.get_printoptions(), np.geterr()
    try:
        np.set_printoptions(precision=2, linewidth=200)
        np.seterr(divide="ignore")
        kernel_reset._restore_numpy(np)
        assert np.get_printoptions()["precision"] == 8 and np.get_printoptions()["linewidth"] == 75
        assert np.geterr()["divide"] == "warn"
    finally:
        np.set_printoptions(**{k: v for k, v in before[0].items() if k != "override_repr"})
        np.seterr(**before[1])


def test_torch_imported_by_a_point_gets_a_fresh_imports_settings_back(unrecorded, monkeypatch):
    import torch
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    try:
        torch.set_printoptions(precision=2)
        torch.set_float32_matmul_precision("medium")
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        kernel_reset._restore_torch(torch)
        assert torch._tensor_str.PRINT_OPTS.precision == 4
        assert torch.get_float32_matmul_precision() == "highest"
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_a_points_own_logger_is_reset_and_an_imported_librarys_is_left_as_it_set_it_up(unrecorded):
    own = logging.getLogger("labbook_test_point_logger")
    library = logging.getLogger("json.labbook_test")  # named after a module still imported
    own.addHandler(logging.StreamHandler(sys.stdout))
    own.setLevel(logging.INFO)
    own.propagate = False
    library.addHandler(logging.NullHandler())
    library.setLevel(logging.ERROR)
    try:
        kernel_reset._restore_logging()
        assert (own.handlers, own.level, own.propagate) == ([], logging.NOTSET, True)
        assert len(library.handlers) == 1 and library.level == logging.ERROR
    finally:
        for logger in (own, library):
            logger.handlers.clear()
            logger.setLevel(logging.NOTSET)
            logger.propagate = True


def test_a_logger_of_the_fresh_kernel_gets_its_handlers_and_level_back(monkeypatch):
    logger = logging.getLogger("labbook_test_fresh_logger")
    handler = logging.NullHandler()
    logger.addHandler(handler)
    try:
        fresh = {name: kernel_reset._logger_state(each) for name, each in kernel_reset._loggers()}
        monkeypatch.setattr(kernel_reset, "_FRESH", {"loggers": fresh, "logging_disabled": logging.NOTSET})
        logger.addHandler(logging.StreamHandler(sys.stdout))
        logger.setLevel(logging.DEBUG)
        logging.getLogger().setLevel(logging.CRITICAL)
        kernel_reset._restore_logging()
        assert logger.handlers == [handler] and logger.level == logging.NOTSET
        assert logging.getLogger().level == fresh[""][0]
    finally:
        logger.handlers.clear()


def test_a_module_that_answers_every_attribute_has_no_places():
    class Odd(type(sys)):
        def __getattr__(self, name):
            return object()

    assert kernel_reset._places(Odd("odd")) == []
    assert kernel_reset.module_file(Odd("odd")) == ""
    assert kernel_reset.module_file(json) == json.__file__
