"""Plain data between stages: JSON round trips, and errors that survive pickling."""

from __future__ import annotations

import json
import pickle

import pytest

import labbook
from labbook import errors
from labbook.model import Artifact, BlasLibrary, CellResult, FileTolerance, Platform, Run, Tolerance, Verdict


def a_run(**changes) -> Run:
    values = dict(
        key="k" * 64,
        cells=(CellResult(0, ({"output_type": "stream", "name": "stdout", "text": "hi\n"},), 0.5,
                          Verdict("it holds", True)),),
        artifacts=(Artifact("figure", "figures/fig-1.png", "a" * 64, 10, 0),),
        inputs={"data/x.csv": "b" * 64},
        basis={"v": 1, "cells": ["c"], "settings": {}, "inputs": {}},
        environment={"python": "3.11"},
        started="2026-01-01T00:00:00+00:00",
        seconds=1.5,
    )
    values.update(changes)
    return Run(**values)


def test_run_round_trips_through_json():
    run = a_run()
    assert Run.from_json(json.loads(json.dumps(run.to_json()))) == run


def test_run_from_json_refuses_another_schema():
    data = a_run().to_json() | {"schema": 99}
    with pytest.raises(ValueError, match="schema 99"):
        Run.from_json(data)


def test_tolerance_per_file_override():
    tolerance = Tolerance(rtol=1e-5, files={"a.csv": FileTolerance(rtol=1e-2)})
    assert tolerance.for_file("a.csv").rtol == 1e-2
    assert tolerance.for_file("b.csv") is tolerance


def test_a_file_tolerance_matches_the_artifact_by_path_name_or_glob():
    exact, glob = FileTolerance(rtol=1e-1), FileTolerance(rtol=1e-2)
    tolerance = Tolerance(files={"a.csv": exact, "*.npz": glob})
    assert tolerance.file("data/a.csv") is exact and tolerance.file("a.csv") is exact
    assert tolerance.file("data/sub/w.npz") is glob
    assert tolerance.file("figures/a.csv.png") == FileTolerance()


def test_the_platform_round_trips_and_an_old_run_json_has_none():
    platform = Platform(cpu="AMD EPYC 7B13", isa="AVX2", machine="x86_64", system="Linux 6.1", libc="glibc 2.36",
                        blas=(BlasLibrary("openblas", "0.3.27", "Zen", 1, "libscipy_openblas64_.so"),),
                        numpy_simd="X86_V3", torch="AVX2", torch_threads=1)
    run = a_run(platform=platform)
    assert Run.from_json(json.loads(json.dumps(run.to_json()))) == run
    old = a_run().to_json()
    del old["platform"]
    assert Run.from_json(old).platform is None
    newer = run.to_json() | {"platform": {**run.to_json()["platform"], "gpu": "none"}}
    assert Run.from_json(newer).platform == platform  # keys a newer labbook adds are dropped
    assert "AMD EPYC 7B13 (AVX2)" in platform.description and "openblas 0.3.27 (Zen kernel, 1 thread)" in platform.description


@pytest.mark.parametrize("kind", [errors.CellError, errors.FrontMatterError, errors.KernelDied, errors.LockError])
def test_errors_survive_pickling_with_every_field(kind):
    error = kind("boom", path="posts/x.md", line=41, hint="try this", cell=2, traceback="tb")
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is kind
    assert (again.path, again.line, again.hint, again.details) == ("posts/x.md", 41, "try this",
                                                                    {"cell": 2, "traceback": "tb"})
    assert str(again) == "posts/x.md:41: boom\n  hint: try this"


def test_about_fills_in_the_path_only_when_missing():
    with pytest.raises(errors.RenderError) as caught, errors.about("posts/a.md"):
        raise errors.RenderError("bad")
    assert caught.value.location == "posts/a.md"
    with pytest.raises(errors.RenderError) as caught, errors.about("posts/a.md"):
        raise errors.RenderError("bad", path="templates/x.html", line=3)
    assert caught.value.location == "templates/x.html:3"


def test_exit_codes_live_on_the_classes():
    assert errors.LabbookError.exit_code == 1
    assert errors.ConfigError.exit_code == 2
    assert errors.LockError.exit_code == 3


def test_public_api_is_listed_and_importable():
    for name in labbook.__all__:
        assert getattr(labbook, name) is not None, name
