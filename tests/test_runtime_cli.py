"""`edgefill inpaint` end to end in subprocesses on the tiny bundle: the torch-free promise,
outputs, the JSON summary, --box, image modes, --seed, and bad input (one line, exit 2, no
output written)."""
import json
import shutil
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

from conftest import SAMPLES, assert_one_line_error, run_cli, run_cli_on_unwritable

FAST = ("--steps", "4", "--restarts", "2", "--no-progress")


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    """A 64x64 sample face as a PNG, and its pixels (RGB)."""
    src = sorted((SAMPLES / "faces").glob("*.png"))[0]
    dst = tmp_path_factory.mktemp("in") / "face.png"
    shutil.copy(src, dst)
    return dst, cv2.cvtColor(cv2.imread(str(dst)), cv2.COLOR_BGR2RGB)


def _inpaint(bundle, *args):
    proc = run_cli("inpaint", *args, "--bundle", str(bundle), *FAST)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _read(path):
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


BLOCKER = textwrap.dedent("""
    import sys, importlib.abc
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "onnx"):
                raise ImportError(f"{name} is blocked: the runtime must not need it")
    sys.meta_path.insert(0, Block())
""")


def test_runtime_needs_neither_torch_nor_onnx(tiny_bundle, face, tmp_path):
    """Import the runtime, run `edgefill --help`, one CLI inpaint and one API inpaint in a process
    where importing torch or onnx fails, then check neither was loaded (the base-install promise)."""
    script = BLOCKER + textwrap.dedent(f"""
        import contextlib, io, json
        import numpy as np
        import edgefill.runtime
        from edgefill.runtime.frontends.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()) as help_text:
            assert main(["--help"]) == 0
        assert "inpaint" in help_text.getvalue()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            rc = main(["inpaint", {str(face[0])!r}, "--mask", "center", "--out", {str(tmp_path / "cli.png")!r},
                       "--bundle", {str(tiny_bundle)!r}, "--steps", "3", "--restarts", "1", "--no-progress"])
        assert rc == 0 and json.loads(out.getvalue())["outputs"][0]["backend"] == "onnx"
        from edgefill.runtime import Inpainter
        res = Inpainter({str(tiny_bundle)!r}).inpaint(np.zeros((40, 30, 3), np.uint8), "center", steps=2)
        assert res.image.shape == (40, 30, 3)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "onnx")))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "cli.png").is_file()


def test_torch_backend_needs_torch_and_says_so_in_one_line(tiny_bundle, face, tmp_path):
    script = BLOCKER + textwrap.dedent(f"""
        from edgefill.runtime.frontends.cli.main import main
        raise SystemExit(main(["inpaint", {str(face[0])!r}, "--mask", "center", "--out", {str(tmp_path / "o.png")!r},
                               "--bundle", {str(tiny_bundle)!r}, "--backend", "torch", "--no-progress"]))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, "needs torch")
    assert not (tmp_path / "o.png").exists()


def test_many_images_json_summary_and_side_by_side(tiny_bundle, tmp_path):
    faces = sorted((SAMPLES / "faces").glob("*.png"))[:3]
    summary = _inpaint(tiny_bundle, *map(str, faces), "--mask", "pattern", "--out", str(tmp_path / "out"),
                       "--side-by-side", "--blend", "poisson", "--batch-size", "2")
    assert summary["backend"] == "onnx" and summary["provider"] == "cpu"
    assert summary["settings"]["steps"] == 4 and summary["settings"]["blend"] == "poisson"
    assert len(summary["outputs"]) == 3
    for rec, src in zip(summary["outputs"], faces):
        assert rec["input"] == str(src) and rec["output"] == str(tmp_path / "out" / f"{src.stem}.png")
        assert rec["steps_run"] == 4 and rec["loss"] > 0 and rec["seconds"] > 0 and rec["refined"] is True
        assert (rec["backend"], rec["provider"], rec["prior"], rec["blend"]) == ("onnx", "cpu", "lsgan", "poisson")
        assert _read(rec["output"]).shape == (64, 64, 3)
        side = _read(rec["side_by_side"])
        assert side.shape[1] > 4 * 64 * 3 and side.shape[0] > 64 * 3
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp files left


def test_torch_backend_from_the_cli(tiny_bundle, face, tmp_path):
    summary = _inpaint(tiny_bundle, str(face[0]), "--mask", "center", "--out", str(tmp_path / "t.png"),
                       "--backend", "torch")
    assert summary["backend"] == "torch" and summary["outputs"][0]["backend"] == "torch"


def test_box_changes_only_hole_pixels(tiny_bundle, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (150, 120, 3), dtype=np.uint8)
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    out = tmp_path / "big_out.png"
    summary = _inpaint(tiny_bundle, str(src), "--mask", "center", "--box", "20,30,80,90", "--out", str(out))
    assert summary["outputs"][0]["box"] == [20, 30, 80, 90]
    result = _read(out)
    hole = np.zeros((150, 120), bool)
    hole[30:120, 20:100] = cv2.resize(np.pad(np.ones((32, 32), np.uint8), 16), (80, 90),
                                      interpolation=cv2.INTER_NEAREST).astype(bool)
    np.testing.assert_array_equal(result[~hole], image[~hole])
    assert (result[hole] != image[hole]).any()


@pytest.mark.parametrize("kind, size", [("center", 64), ("half", 64), ("free-form", 64), ("center", 150),
                                        ("half", 157), ("center", 40)])
def test_what_lies_under_the_hole_never_reaches_the_output(tiny_bundle, sample_faces, kind, size):
    """The resize to 64x64, the search, encoder start, blends, refiner (with its Telea channels and
    mirror average) and the samples read the known pixels only: the same face with other values in
    its hole gives the same fills, bit for bit. Half masks reach the border, where OpenCV's Telea
    alone would read them; at 150, 157 and 40 pixels a mask kind's edge cuts through the resize's
    footprints, which read the hole until preprocess.known_only (11-20 levels of change inside)."""
    from edgefill.runtime import Inpainter
    from edgefill.runtime.imaging.preprocess import prepare

    inp = Inpainter(str(tiny_bundle))
    rng = np.random.default_rng(1)
    face = cv2.resize(sample_faces[2], (size, size), interpolation=cv2.INTER_CUBIC)
    full = prepare(face, kind, rng=np.random.default_rng(0)).mask
    hole = full >= 128
    spec = kind if kind in ("center", "half") else full  # a drawn kind as the array: the same hole both times
    other = face.copy()
    other[hole] = rng.integers(0, 256, (int(hole.sum()), 3), dtype=np.uint8)
    for blend in ("poisson", "paste"):
        a, b = (inp.inpaint(x, spec, steps=2, blend=blend, seed=5) for x in (face, other))
        assert np.array_equal(a.image, b.image), blend
    a, b = (inp.inpaint(x, spec, steps=2, samples=2, seed=5) for x in (face, other))
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))


@pytest.mark.parametrize("mode", ["rgba", "gray", "rgb16", "gray16"])
def test_image_modes(tiny_bundle, face, tmp_path, mode):
    rgb = face[1]
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    data = {"rgba": np.dstack([bgr, np.full(rgb.shape[:2], 255, np.uint8)]), "gray": bgr[:, :, 1],
            "rgb16": bgr.astype(np.uint16) * 257, "gray16": bgr[:, :, 1].astype(np.uint16) * 257}[mode]
    src = tmp_path / f"{mode}.png"
    cv2.imwrite(str(src), data)
    out = tmp_path / f"{mode}_out.png"
    _inpaint(tiny_bundle, str(src), "--mask", "center", "--out", str(out))
    result = _read(out)
    expected = rgb if mode in ("rgba", "rgb16") else np.repeat(rgb[:, :, 1:2], 3, axis=2)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    np.testing.assert_array_equal(result[~hole], expected[~hole])


def test_seed_is_repeatable(tiny_bundle, face, tmp_path):
    outs = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        _inpaint(tiny_bundle, str(face[0]), "--mask", "random-box", "--seed", seed, "--out", str(tmp_path / f"{name}.png"))
        outs.append(_read(tmp_path / f"{name}.png"))
    np.testing.assert_array_equal(outs[0], outs[1])
    assert not np.array_equal(outs[0], outs[2])


def test_flip_average_is_on_by_default_and_the_flag_turns_it_off(tiny_bundle, face, tmp_path):
    """The refiner averaged over the face and its mirror (the bundle's default) against one pass:
    the same known pixels, another hole, and the JSON says which ran."""
    on = _inpaint(tiny_bundle, str(face[0]), "--mask", "center", "--out", str(tmp_path / "on.png"))
    off = _inpaint(tiny_bundle, str(face[0]), "--mask", "center", "--out", str(tmp_path / "off.png"),
                   "--no-flip-average")
    assert on["settings"]["flip_average"] is True and off["settings"]["flip_average"] is False
    a, b = _read(tmp_path / "on.png"), _read(tmp_path / "off.png")
    hole = np.zeros(a.shape[:2], bool)
    hole[16:48, 16:48] = True
    np.testing.assert_array_equal(a[~hole], b[~hole])
    assert not np.array_equal(a[hole], b[hole])


def test_all_known_and_all_missing_masks(tiny_bundle, face, tmp_path):
    known = tmp_path / "known.png"
    missing = tmp_path / "missing.png"
    cv2.imwrite(str(known), np.zeros((64, 64), np.uint8))
    cv2.imwrite(str(missing), np.full((64, 64), 255, np.uint8))
    summary = _inpaint(tiny_bundle, str(face[0]), "--mask", str(known), "--out", str(tmp_path / "k.png"))
    np.testing.assert_array_equal(_read(tmp_path / "k.png"), face[1])
    assert summary["outputs"][0]["steps_run"] == 0
    summary = _inpaint(tiny_bundle, str(face[0]), "--mask", str(missing), "--out", str(tmp_path / "m.png"))
    assert summary["outputs"][0]["steps_run"] == 4 and summary["outputs"][0]["hole_fraction"] == 1.0
    assert not np.array_equal(_read(tmp_path / "m.png"), face[1])


def test_mask_of_another_size_same_aspect_is_resized(tiny_bundle, face, tmp_path):
    mask = np.zeros((128, 128), np.uint8)
    mask[32:96, 32:96] = 255
    path = tmp_path / "mask128.png"
    cv2.imwrite(str(path), mask)
    summary = _inpaint(tiny_bundle, str(face[0]), "--mask", str(path), "--out", str(tmp_path / "o.png"))
    assert summary["outputs"][0]["hole_fraction"] == 0.25
    result = _read(tmp_path / "o.png")
    hole = cv2.resize(mask, (64, 64), interpolation=cv2.INTER_NEAREST) >= 128
    np.testing.assert_array_equal(result[~hole], face[1][~hole])


def _bad_bundle(tiny_bundle, tmp_path):
    bad = tmp_path / "damaged"
    shutil.copytree(tiny_bundle, bad)
    with open(bad / "generator.onnx", "r+b") as f:
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    return bad


BAD = {
    "missing file": (lambda t, f, b: [str(t / "nope.png"), "--mask", "center"], "image not found"),
    "not an image": (lambda t, f, b: [str(_text(t)), "--mask", "center"], "not a readable image"),
    "mask of another aspect": (lambda t, f, b: [str(f), "--mask", str(_mask(t, (32, 64)))], "aspect ratio"),
    "unknown mask kind": (lambda t, f, b: [str(f), "--mask", "blob"], "neither a mask kind"),
    "damaged bundle": (lambda t, f, b: [str(f), "--mask", "center", "--bundle", str(_bad_bundle(b, t))], "damaged"),
    "missing bundle": (lambda t, f, b: [str(f), "--mask", "center", "--bundle", str(t / "nobundle")], "not found"),
    "unknown provider": (lambda t, f, b: [str(f), "--mask", "center", "--provider", "npu"], "--provider"),
    "cuda cannot load": (lambda t, f, b: [str(f), "--mask", "center", "--provider", "cuda"], "provider cuda"),
    "bad box": (lambda t, f, b: [str(f), "--mask", "center", "--box", "0,0,100,100"], "not inside"),
    "several inputs, file out": (lambda t, f, b: [str(f), str(f), "--mask", "center"], "must be a folder"),
}


def _text(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("not an image")
    return p


def _mask(tmp_path, shape):
    p = tmp_path / "mask_other.png"
    cv2.imwrite(str(p), np.full(shape, 255, np.uint8))
    return p


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_writes_nothing(tiny_bundle, face, tmp_path, case):
    if case == "cuda cannot load":
        from edgefill.runtime.core.engine import PROVIDERS

        import onnxruntime as ort

        if PROVIDERS["cuda"] in ort.get_available_providers():
            try:
                sess = ort.InferenceSession(str(tiny_bundle / "generator.onnx"), providers=[PROVIDERS["cuda"]])
                if sess.get_providers()[0] == PROVIDERS["cuda"]:
                    pytest.skip("CUDA loads on this machine")
            except Exception:  # noqa: BLE001 - not loading is what this case needs
                pass
    make, fragment = BAD[case]
    out = tmp_path / "outdir" / "result.png"
    args = make(tmp_path, face[0], tiny_bundle)
    proc = run_cli("inpaint", *args, "--out", str(out), *(() if "--bundle" in args else ("--bundle", str(tiny_bundle))),
                   "--steps", "2", "--no-progress")
    assert_one_line_error(proc, fragment)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert not out.exists() and not (tmp_path / "outdir").exists()


def test_output_paths_are_checked_before_any_work(tiny_bundle, face, tmp_path):
    """Every protection of `inpaint`'s outputs: one line, exit 2, nothing written."""
    common = ("--mask", "center", "--bundle", str(tiny_bundle), "--steps", "2", "--no-progress")
    src = tmp_path / "face.png"
    shutil.copy(face[0], src)
    # an output file with a suffix that is no image
    assert_one_line_error(run_cli("inpaint", str(src), "--out", str(tmp_path / "out.txt"), *common), "must end in")
    # several inputs into an existing file
    existing = tmp_path / "existing"
    existing.write_text("keep me")
    assert_one_line_error(run_cli("inpaint", str(src), str(src), "--out", str(existing), *common), "existing file")
    assert existing.read_text() == "keep me"
    # two inputs of the same name would overwrite each other
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    for d in ("a", "b"):
        shutil.copy(face[0], tmp_path / d / "same.png")
    proc = run_cli("inpaint", str(tmp_path / "a" / "same.png"), str(tmp_path / "b" / "same.png"), "--out",
                   str(tmp_path / "outs"), *common)
    assert_one_line_error(proc, "several inputs are named 'same'")
    # the side-by-side picture would replace the output
    out = tmp_path / "o.png"
    assert_one_line_error(run_cli("inpaint", str(src), "--out", str(out), "--side-by-side", str(out), *common),
                          "same file")
    # an output that is an existing folder
    (tmp_path / "outs2" / "face.png").mkdir(parents=True)
    assert_one_line_error(run_cli("inpaint", str(src), str(tmp_path / "a" / "same.png"), "--out",
                                  str(tmp_path / "outs2"), *common), "existing folder")
    assert not out.exists() and not (tmp_path / "outs").exists()
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temp file left anywhere


@pytest.mark.parametrize("kind", ["read-only", "full"])
def test_unwritable_output_folder_is_one_line_and_leaves_nothing(tiny_bundle, face, tmp_path, kind):
    src = tmp_path / "face.png"
    shutil.copy(face[0], src)
    folder = tmp_path / "out"
    folder.mkdir()
    proc, left = run_cli_on_unwritable(folder, kind, "inpaint", str(src), "--mask", "center", "--out",
                                       str(folder / "filled.png"), "--bundle", str(tiny_bundle), "--steps", "2",
                                       "--no-progress")
    assert_one_line_error(proc, "cannot write")
    assert ("Read-only" in proc.stderr) if kind == "read-only" else ("No space" in proc.stderr or "could not" in proc.stderr)
    assert left == [], left  # neither the output nor a temporary file


# -- --samples K: K fills per hole (issue 22) --------------------------------------------------

def test_samples_write_k_files_a_contact_sheet_and_list_them(tiny_bundle, face, tmp_path):
    out = tmp_path / "o.png"
    summary = _inpaint(tiny_bundle, str(face[0]), "--mask", "center", "--out", str(out), "--samples", "3")
    files = [tmp_path / f"o.{k}.png" for k in (1, 2, 3)]
    sheet = tmp_path / "o.samples.png"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f.name for f in files] + [sheet.name])
    rec = summary["outputs"][0]
    assert summary["settings"]["samples"] == 3 and rec["output"] == str(files[0])
    assert rec["contact_sheet"] == str(sheet) and [s["output"] for s in rec["samples"]] == list(map(str, files))
    losses = [s["loss"] for s in rec["samples"]]
    assert losses == sorted(losses) and rec["loss"] == losses[0] and losses[0] > 0
    assert sorted(s["start_index"] for s in rec["samples"]) == [0, 1, 2]
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    pics = [_read(f) for f in files]
    for pic in pics:
        assert pic.shape == (64, 64, 3)
        np.testing.assert_array_equal(pic[~hole], face[1][~hole])
    assert len({p[hole].tobytes() for p in pics}) == 3, "each sample fills the hole its own way"
    assert summary["settings"]["sample_scale"] == 1.8  # the bundle's placement (RefineConfig)
    # --sample-scale 0: samples 2..3 as the refiner leaves them; sample 1 (the single output) unchanged
    raw = _inpaint(tiny_bundle, str(face[0]), "--mask", "center", "--out", str(tmp_path / "r" / "o.png"),
                   "--samples", "3", "--sample-scale", "0")
    assert raw["settings"]["sample_scale"] == 0.0
    first = next(s for s in rec["samples"] if s["start_index"] == 0)
    again = next(s for s in raw["outputs"][0]["samples"] if s["start_index"] == 0)
    np.testing.assert_array_equal(_read(again["output"]), _read(first["output"]))
    # input | 3 samples, 64x64 tiles enlarged 3x, padded by 2, with a title row (runtime.imaging.pictures)
    assert _read(sheet).shape == (14 * 3 + 64 * 3 + 4, 4 * (64 * 3 + 2) + 2, 3)


def test_samples_batch_as_one_search_per_batch(tiny_bundle, tmp_path, monkeypatch):
    """Three inputs, --batch-size 2: two Pipeline.run_samples calls (never K single runs), folder
    naming <name>.<k>.png, and an input's samples do not depend on the others in its batch."""
    from edgefill.runtime.core.pipeline import Pipeline
    from edgefill.runtime.frontends.inpaint_files import InpaintJob, run_inpaint

    faces = tuple(str(p) for p in sorted((SAMPLES / "faces").glob("*.png"))[:3])
    calls = []
    real_samples = Pipeline.run_samples

    def counted(self, images, *args, **kw):
        calls.append(len(images))
        return real_samples(self, images, *args, **kw)

    monkeypatch.setattr(Pipeline, "run_samples", counted)
    job = InpaintJob(inputs=faces, mask="pattern", out=str(tmp_path / "out"), bundle=str(tiny_bundle), steps=3,
                     restarts=1, batch_size=2, progress=False, samples=2, seed=5)
    summary = run_inpaint(job)
    assert calls == [2, 1]
    for rec, src in zip(summary["outputs"], faces):
        stem = src.rsplit("/", 1)[-1][:-4]
        assert [s["output"] for s in rec["samples"]] == [str(tmp_path / "out" / f"{stem}.{k}.png") for k in (1, 2)]
        assert (tmp_path / "out" / f"{stem}.samples.png").is_file()
    alone = run_inpaint(InpaintJob(inputs=faces[1:2], mask="pattern", out=str(tmp_path / "alone.png"),
                                   bundle=str(tiny_bundle), steps=3, restarts=1, progress=False, samples=2, seed=6))
    for a, b in zip(alone["outputs"][0]["samples"], summary["outputs"][1]["samples"]):
        np.testing.assert_array_equal(_read(a["output"]), _read(b["output"]))
        assert a["start_index"] == b["start_index"]


def test_one_sample_is_the_plain_run(tiny_bundle, face, tmp_path):
    plain = _inpaint(tiny_bundle, str(face[0]), "--mask", "random-box", "--seed", "2", "--out", str(tmp_path / "a.png"))
    one = _inpaint(tiny_bundle, str(face[0]), "--mask", "random-box", "--seed", "2", "--out", str(tmp_path / "b.png"),
                   "--samples", "1")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]
    drop = ("output", "seconds")
    assert {k: v for k, v in plain["outputs"][0].items() if k not in drop} == \
        {k: v for k, v in one["outputs"][0].items() if k not in drop}


@pytest.mark.parametrize("args,fragment", [
    (["--samples", "0"], "--samples"),
    (["--samples", "17"], "--samples"),
    (["--samples", "two"], "--samples"),
    (["--samples", "1.5"], "--samples"),
    (["--sample-spread", "-1"], "--sample-spread"),
    (["--samples", "3", "--sample-scale", "-0.5"], "--sample-scale"),
    (["--samples", "3", "--sample-scale", "wide"], "--sample-scale"),
    (["--samples", "2", "--side-by-side"], "contact sheet"),
    (["--samples", "2", "--sample-spread", "0.2", "--server", "http://127.0.0.1:9"], "--sample-spread"),
])
def test_bad_samples_are_one_line_and_write_nothing(tiny_bundle, face, tmp_path, args, fragment):
    bundle = () if "--server" in args else ("--bundle", str(tiny_bundle))
    proc = run_cli("inpaint", str(face[0]), "--mask", "center", "--out", str(tmp_path / "o" / "r.png"), *bundle,
                   "--steps", "2", "--no-progress", *args)
    assert_one_line_error(proc, fragment)
    assert proc.stdout == "" and not (tmp_path / "o").exists()


def test_cli_sample_limit_is_the_inpainters():
    from edgefill.runtime.frontends.cli import inpaint_cmd
    from edgefill.runtime.frontends.inpainter import MAX_SAMPLES

    assert inpaint_cmd.MAX_SAMPLES == MAX_SAMPLES


def test_samples_through_a_server_write_the_same_files(tiny_bundle, face, tmp_path, monkeypatch):
    """`--server URL --samples K` (in-process, with a stand-in ServeClient that answers like the
    server: Inpainter.inpaint(samples=K) as [(image, stats)]): the same files, contact sheet and
    JSON fields as the local run, and the same pixels."""
    import inspect

    from edgefill.runtime.frontends import inpaint_files
    from edgefill.runtime.frontends.inpaint_files import InpaintJob, run_inpaint
    from edgefill.runtime.frontends.inpainter import Inpainter
    from edgefill.runtime.frontends.serve import client as client_mod

    job = dict(inputs=(str(face[0]),), mask="center", steps=3, restarts=1, progress=False, samples=3, seed=4)
    if "samples" not in inspect.signature(client_mod.ServeClient.inpaint).parameters:
        with pytest.raises(inpaint_files.EdgefillError, match="--samples is not available with --server"):
            run_inpaint(InpaintJob(out=str(tmp_path / "r.png"), server="http://127.0.0.1:9", **job))
        return
    inp = Inpainter(str(tiny_bundle))

    class Stand_in:
        def __init__(self, url):
            self.url = url

        def inpaint(self, image, mask, *, steps=None, restarts=None, seed=0, box=None, init=None, samples=None):
            results = inp.inpaint(image, mask, steps=steps, restarts=restarts, seed=seed, box=box, init=init,
                                  samples=samples)
            return [(r.image, {"loss": r.stats["loss"], "steps_run": r.stats["steps_run"], "seconds": 0.1,
                               "server": self.url, "sample": k, "samples": samples}) for k, r in enumerate(results)]

        def close(self):
            pass

    monkeypatch.setattr(client_mod, "ServeClient", Stand_in)
    remote = run_inpaint(InpaintJob(out=str(tmp_path / "r.png"), server="http://x:1", **job))["outputs"][0]
    local = run_inpaint(InpaintJob(out=str(tmp_path / "l.png"), bundle=str(tiny_bundle), **job))["outputs"][0]
    assert [s["output"] for s in remote["samples"]] == [str(tmp_path / f"r.{k}.png") for k in (1, 2, 3)]
    for r, l in zip(remote["samples"], local["samples"]):
        assert r["loss"] == pytest.approx(l["loss"])
        np.testing.assert_array_equal(_read(r["output"]), _read(l["output"]))
    np.testing.assert_array_equal(_read(remote["contact_sheet"])[50:], _read(local["contact_sheet"])[50:])
