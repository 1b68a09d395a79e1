"""The community site: static HTML pages built from the accepted community results.

`build_site(results_dir, output)` writes an index (one row per chip and model), a page per
chip, a page per result (with its JSON beside it) and a projection table per model.

Three promises, each kept by construction:

- deterministic: inputs are sorted, nothing reads the clock, floats are formatted with
  fixed precision, and every file is written from one in-memory map of path -> bytes,
  so the same results give the same bytes (CI can rebuild and publish without churn);
- portable: every link is relative and nothing is fetched, so the pages work from
  file:// as well as from any static host, under any path prefix;
- safe: community text (notes, chip and OS names) goes through jinja2's autoescape.

Only files that `benchkit validate` accepts are shown; the others are returned as
`skipped` with the reason, so a bad file cannot take the site down.
"""

from __future__ import annotations

import os
import shutil
import statistics
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from benchkit.core.version import __version__
from benchkit.core.errors import BenchkitError
from benchkit.core.units import fmt_bytes, fmt_mib, fmt_tps

MARKER = ".benchkit-site"        # marks a folder this module may wipe and rebuild
TEMPLATES = "templates/site"


@dataclass
class Built:
    """What build_site wrote: page paths (relative to the output), results shown, skips."""

    pages: list[str]
    n_results: int
    skipped: list[str] = field(default_factory=list)


@dataclass
class Entry:
    """One accepted result file, with the identity the data set files it under."""

    id: str
    chip: str
    model: str
    file: str
    doc: dict[str, Any]


def build_site(results_dir: str | os.PathLike[str], output: str | os.PathLike[str], *,
               suites_dir: str | os.PathLike[str] | None = None) -> Built:
    """Validate every result under `results_dir` and write the site of the accepted ones."""
    from benchkit.community.core import ERROR, validate_paths

    verdicts = validate_paths([results_dir], suites_dir=suites_dir)
    skipped = [str(next(p for p in v.problems if p.level == ERROR))
               for v in verdicts if not v.accepted]
    entries = sorted((_entry(v.file, v.doc, v.relpath) for v in verdicts
                      if v.accepted and v.doc),
                     key=lambda e: (e.model, e.chip, e.id))
    files = render(entries)
    _write(Path(output), files)
    pages = sorted(p for p in files if p.endswith(".html"))
    return Built(pages=pages, n_results=len(entries), skipped=skipped)


def _entry(file: str, doc: dict[str, Any], rel: PurePosixPath | None = None) -> Entry:
    """The entry of an accepted file; `rel` is where its content files it (from the file
    as written: an older format's file keeps its id after the upgrade on read)."""
    from benchkit.community.core import community_relpath

    rel = rel or community_relpath(doc)
    return Entry(id=PurePosixPath(rel.name).stem, chip=rel.parts[0], model=rel.parts[1],
                 file=file, doc=doc)


# --- rendering: entries -> {relative path: bytes} ----------------------------------------


def render(entries: list[Entry]) -> dict[str, bytes]:
    """Every file of the site, in memory; nothing here touches the disk or the clock."""
    env = _jinja()
    models = _models(entries)
    common = {"version": __version__, "n_results": len(entries),
              "data_through": max((str(e.doc.get("started_at") or "") for e in entries),
                                  default=""),
              "nav_models": [{"slug": m["slug"], "short": m["short"]} for m in models]}
    files: dict[str, bytes] = {}

    def page(path: str, template: str, **ctx: Any) -> None:
        root = "../" * path.count("/")
        html = env.get_template(template).render(root=root, **common, **ctx)
        files[path] = html.encode("utf-8")

    page("index.html", "index.html.j2", models=models,
         n_chips=len({e.chip for e in entries}))
    for m in models:
        page(f"projection/{m['slug']}.html", "projection.html.j2", m=m, p=m["projection"])
    for chip, mine in _by(entries, lambda e: e.chip).items():
        page(f"chips/{chip}.html", "chip.html.j2", chip=_chip_facts(chip, mine),
             results=[_result_row(e) for e in sorted(mine, key=lambda e: (e.model, e.id))])
    for e in entries:
        page(f"results/{e.id}.html", "result.html.j2", r=_result_page(e))
        files[f"results/{e.id}.json"] = _published_bytes(e.file)
    files["style.css"] = _template_bytes("style.css")
    files[MARKER] = b"written by benchkit site; the folder is rebuilt on every run\n"
    return files


def _published_bytes(file: str) -> bytes:
    """The accepted file's bytes, read as validate read it: a regular file, bounded."""
    from benchkit.community.core import MAX_BYTES
    from benchkit.core.safeio import read_bounded_bytes

    return read_bounded_bytes(file, MAX_BYTES, "result file")


def _jinja() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("benchkit", TEMPLATES),
        autoescape=True, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)


def _template_bytes(name: str) -> bytes:
    from importlib import resources

    return resources.files("benchkit").joinpath(f"{TEMPLATES}/{name}").read_bytes()


def _write(out: Path, files: dict[str, bytes]) -> None:
    """Replace the output folder's content; refuse a non-empty folder that is not a site."""
    if out.exists():
        if not out.is_dir():
            raise BenchkitError("exists and is not a folder", file=str(out), field="--output")
        if any(out.iterdir()) and not (out / MARKER).is_file():
            raise BenchkitError(f"folder is not empty and was not written by benchkit site "
                                f"(no {MARKER}); choose an empty or new folder",
                                file=str(out), field="--output")
        shutil.rmtree(out)
    for rel, data in sorted(files.items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


# --- the index and the projection, per model ---------------------------------------------


def _models(entries: list[Entry]) -> list[dict[str, Any]]:
    """One block per model: its measured rows (one per chip) and its projection table."""
    out = []
    for slug_, mine in _by(entries, lambda e: e.model).items():
        model = _case_of(mine[0].doc, None)["model"]
        groups = _by(mine, lambda e: e.chip)
        rows = [_index_row(chip, group) for chip, group in groups.items()]
        block = {
            "slug": slug_, "name": str(model.get("name") or slug_),
            "short": _short(str(model.get("name") or slug_)),
            "quant": model.get("quantization") or "?",
            "size": fmt_bytes(model.get("size_bytes")),
            "sha256": (str(model.get("sha256") or "")[:16] + "…") if model.get("sha256") else "",
            "synthetic": bool(model.get("synthetic")),
            "suites": sorted({str(e.doc["suite"]["name"]) for e in mine}),
            "tg_test": _test_name(mine, "tg"), "pp_test": _test_name(mine, "pp"),
            "rows": rows,
        }
        _add_projection(block, rows, model)
        block["chart"] = _chart(rows)
        out.append(block)
    return out


def _index_row(chip: str, group: list[Entry]) -> dict[str, Any]:
    tg, pp = _pooled(group, "tg"), _pooled(group, "pp")
    first = group[0]
    return {"chip": chip, "chip_name": _chip_name(chip, first.doc),
            "device": _device_label(first.doc), "tg": _fig(tg), "pp": _fig(pp),
            "tg_value": statistics.median(tg) if tg else None,
            "pp_value": statistics.median(pp) if pp else None,
            "tg_min": min(tg) if tg else None, "tg_max": max(tg) if tg else None,
            "n_submissions": len(group), "model": _case_of(first.doc, None)["model"],
            "projected": None, "projected_range": None, "error": None, "error_note": ""}


def _pooled(group: list[Entry], kind: str) -> list[float]:
    """Every timed iteration of the first test of this kind, across the group's files."""
    values: list[float] = []
    for e in group:
        case = _case_of(e.doc, kind)
        if case is not None:
            values.extend(float(it["tps"]) for it in case["iterations"])
    return values


def _add_projection(block: dict[str, Any], rows: list[dict[str, Any]],
                    model: dict[str, Any]) -> None:
    """The projection table (calibrated on every measured chip in the database) and, per
    measured chip, the figure projected from the OTHER chips with its error."""
    from benchkit.projection.chips import load_chips

    known = load_chips()
    anchors = [r for r in rows if r["chip"] in known and r["tg_value"]]
    block["no_projection_note"] = (
        "the chip is not in benchkit's chip database, or no other chip in it has measured "
        "this model yet")
    if not anchors:
        block["projection"] = {"rows": [], "reason": "no chip in benchkit's database has "
                               "measured this model yet (CPU results cannot calibrate a GPU "
                               "projection). Submit a GPU or Apple Silicon result."}
        return
    try:
        table = _project(anchors, model, known, chips="all")
    except BenchkitError as exc:           # e.g. figures the projection cannot use
        block["projection"] = {"rows": [], "reason": f"the projection refused these "
                               f"measurements: {exc.message}"}
        return
    measured = {r["chip"]: r for r in rows}
    block["projection"] = {
        "method": "roofline", "n_anchors": len(anchors),
        "anchors": ", ".join(r["chip_name"] for r in anchors),
        "rows": [_projection_row(p, measured.get(p["chip"])) for p in table]}
    for row in anchors:
        others = [r for r in anchors if r is not row]
        if not others:
            row["error_note"] = "needs a measurement of this model on another chip"
            continue
        try:
            got = _project(others, model, known, chips=[row["chip"]])[0]
        except BenchkitError as exc:
            row["error_note"] = exc.message
            continue
        if got.get("tg_tps"):
            row["projected"] = _tps(got["tg_tps"])
            row["projected_range"] = f"{_tps(got['tg_low'])}–{_tps(got['tg_high'])}"
            row["error"] = f"{got['tg_tps'] / row['tg_value'] - 1:+.0%}"
            row["error_note"] = "projected from the other chips' measurements"


def _project(rows: list[dict[str, Any]], model: dict[str, Any], known: dict[str, Any],
             chips: Any) -> list[dict[str, Any]]:
    from benchkit.projection.api import project
    from benchkit.projection.measurements import Measurement

    ms = [Measurement(chip_id=r["chip"], tg_tps=r["tg_value"], pp_tps=r["pp_value"],
                      model_bytes=model.get("size_bytes"), n_layers=model.get("n_layers"),
                      n_params=model.get("n_params"), source="community results",
                      model_key=model.get("sha256"), model_name=model.get("name"))
          for r in rows]
    return project(ms, method="roofline", model_bytes=model.get("size_bytes"),
                   n_layers=model.get("n_layers"), chips=chips)


def _projection_row(p: dict[str, Any], measured: dict[str, Any] | None) -> dict[str, Any]:
    status = {"not tested": "Not tested", "does not fit": "Does not fit in memory"}.get(
        p["status"], p["status"])
    if measured:
        status = f"✅ Measured {_tps(measured['tg_value'])} tok/s"
    return {"chip": p["chip"], "name": p.get("label") or p["name"],
            "gpu_cores": p.get("gpu_cores") or "—",
            "bandwidth": f"{p['bandwidth_gbs']:,.0f} GB/s" if p.get("bandwidth_gbs") else "—",
            "tg": _tps(p.get("tg_tps")),
            "tg_range": (f"{_tps(p['tg_low'])}–{_tps(p['tg_high'])}"
                         if p.get("tg_low") and p.get("tg_high") else ""),
            "pp": _tps(p.get("pp_tps")), "measured": measured is not None, "status": status}


def _chart(rows: list[dict[str, Any]]) -> str:
    """Measured decode tok/s per chip as an inline SVG bar chart (min-max whiskers).

    Hand-written SVG rather than matplotlib's: its output carries ids and metadata that
    would make the bytes differ between builds.
    """
    from markupsafe import Markup, escape

    data = [r for r in rows if r["tg_value"]]
    if not data:
        return ""
    top = max(r["tg_max"] for r in data) or 1.0
    label_w, bar_w, h = 200, 360, 26
    height = h * len(data) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {label_w + bar_w + 90} '
             f'{height}" width="{label_w + bar_w + 90}" height="{height}" role="img" '
             f'aria-label="measured decode tok/s per chip">']
    for i, r in enumerate(data):
        y = 10 + i * h
        w = bar_w * r["tg_value"] / top
        lo, hi = bar_w * r["tg_min"] / top, bar_w * r["tg_max"] / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12">'
            f'{escape(r["chip_name"])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="16" fill="#0072b2"/>'
            f'<line x1="{label_w + lo:.1f}" x2="{label_w + hi:.1f}" y1="{y + 11}" '
            f'y2="{y + 11}" stroke="#1b1f24" stroke-width="1.5"/>'
            f'<text x="{label_w + max(w, hi) + 6:.1f}" y="{y + 15}" font-size="12">'
            f'{_tps(r["tg_value"])}</text>')
    parts.append(f'<text x="{label_w}" y="{height - 4}" font-size="11" fill="#57606a">'
                 'tok/s (median of every timed iteration)</text></svg>')
    return Markup("".join(parts))


# --- chip and result pages ---------------------------------------------------------------


def _chip_facts(chip: str, entries: list[Entry]) -> dict[str, Any]:
    from benchkit.projection.chips import load_chips

    db = load_chips().get(chip)
    facts = None
    if db is not None:
        facts = {"vendor": db.vendor, "gpu_cores": db.gpu_cores,
                 "bandwidth": f"{db.bandwidth_gbs:,.0f} GB/s"}
    return {"id": chip, "name": _chip_name(chip, entries[0].doc), "db": facts}


def _result_row(e: Entry) -> dict[str, Any]:
    env = e.doc["environment"]
    model = _case_of(e.doc, None)["model"]
    return {"id": e.id, "model": model.get("name"), "synthetic": bool(model.get("synthetic")),
            "started_at": e.doc.get("started_at") or "",
            "tg": _fig(_pooled([e], "tg")), "pp": _fig(_pooled([e], "pp")),
            "backend": env.get("backend"), "os": _os(env),
            "memory": fmt_bytes(env.get("memory_bytes"))}


def _result_page(e: Entry) -> dict[str, Any]:
    doc, env = e.doc, e.doc["environment"]
    model = _case_of(doc, None)["model"]
    community = doc.get("community") if isinstance(doc.get("community"), dict) else {}
    return {
        "id": e.id, "chip": e.chip, "chip_name": _chip_name(e.chip, doc),
        "model": model.get("name"), "synthetic": bool(model.get("synthetic")),
        "suite": doc["suite"]["name"], "notes": community.get("notes") or "",
        "cases": [_case_row(c) for c in doc["cases"]],
        "environment": _env_facts(doc, env), "model_facts": _model_facts(model),
        "warnings": [f"{c['test']}: {w}" for c in doc["cases"] for w in c.get("warnings") or []],
    }


def _case_row(c: dict[str, Any]) -> dict[str, Any]:
    s, p = c["summary"], c.get("placement") or {}
    engine = c.get("engine") or {}
    buffers = p.get("buffers") or []

    def buf(kind: str) -> str:
        sizes = [b["mib"] for b in buffers if b.get("kind") == kind and b.get("mib") is not None]
        return fmt_mib(sum(sizes)) if sizes else "—"

    return {
        "test": c["test"], "n": s.get("n"), "warmup": c.get("warmup", "—"),
        "median": _tps(s.get("tps_median")), "mean": _tps(s.get("tps_mean")),
        "stdev": _tps(s.get("tps_stdev")), "cv": _pct(s.get("tps_cv")),
        "ci": f"{_tps(s.get('tps_ci95_low'))} – {_tps(s.get('tps_ci95_high'))}",
        "min": _tps(s.get("tps_min")), "max": _tps(s.get("tps_max")),
        "iteration_values": ", ".join(_tps(it["tps"]) for it in c["iterations"]),
        "layers": (f"{p.get('layers_offloaded')}/{p.get('layers_total')}"
                   if p.get("layers_total") is not None else "—"),
        "devices": ", ".join(map(str, p.get("devices") or [])) or "—",
        "model_mib": buf("model"), "kv_mib": buf("kv"), "compute_mib": buf("compute"),
        "flash_attn": {True: "on", False: "off"}.get(p.get("flash_attn"), "—"),
        "engine": " ".join(f"{k}={engine[k]}" for k in sorted(engine)),
    }


def _env_facts(doc: dict[str, Any], env: dict[str, Any]) -> list[tuple[str, str]]:
    chip, cpu = env.get("chip") or {}, env.get("cpu") or {}
    gpus = "; ".join(f"{g.get('name')} ({fmt_bytes(g.get('memory_bytes'))})"
                     for g in env.get("gpus") or []) or "none"
    versions = env.get("versions") or {}
    return [
        ("chip", f"{chip.get('name') or '?'} ({chip.get('kind')})"
                 + (f", {chip['gpu_cores']} GPU cores" if chip.get("gpu_cores") else "")),
        ("GPUs", gpus),
        ("backend", str(env.get("backend"))),
        ("CPU", f"{cpu.get('model') or '?'}, {cpu.get('cores_physical') or '?'} physical / "
                f"{cpu.get('cores_logical') or '?'} logical cores, {cpu.get('arch') or '?'}"),
        ("memory", fmt_bytes(env.get("memory_bytes"))),
        ("OS", _os(env)),
        ("llama.cpp system info", str(env.get("llama_cpp_system_info") or "—")),
        ("versions", f"benchkit {versions.get('benchkit')}, llama-cpp-python "
                     f"{versions.get('llama_cpp_python')}, Python {env.get('python') or '?'}"),
        ("measured", f"{doc.get('started_at')} to {doc.get('finished_at') or '?'}"),
        ("command", " ".join(map(str, doc.get("command") or [])) or "—"),
    ]


def _model_facts(model: dict[str, Any]) -> list[tuple[str, str]]:
    source = model.get("source") or {}
    return [
        ("file", str(model.get("name"))),
        ("source", ", ".join(f"{k}: {v}" for k, v in sorted(source.items())) or "—"),
        ("size", f"{model.get('size_bytes'):,} bytes ({fmt_bytes(model.get('size_bytes'))})"
                 if model.get("size_bytes") else "—"),
        ("sha256", str(model.get("sha256") or "—")),
        ("architecture", str(model.get("architecture") or "—")),
        ("parameters", f"{model['n_params']:,}" if model.get("n_params") else "—"),
        ("quantization", str(model.get("quantization") or "—")),
        ("layers", str(model.get("n_layers") or "—")),
        ("synthetic", "yes: a shape-exact stand-in with random weights"
                      + (f" for {model['standin_for']}" if model.get("standin_for") else "")
         if model.get("synthetic") else "no"),
    ]


# --- small helpers -----------------------------------------------------------------------


def _by(entries: list[Entry], key: Any) -> dict[str, list[Entry]]:
    out: dict[str, list[Entry]] = {}
    for e in entries:
        out.setdefault(key(e), []).append(e)
    return dict(sorted(out.items()))


def _case_of(doc: dict[str, Any], kind: str | None) -> dict[str, Any] | None:
    """The first ok case of a workload kind (any case for None)."""
    for c in doc["cases"]:
        if c.get("status") == "ok" and (kind is None or c["workload"]["kind"] == kind):
            return c
    return doc["cases"][0] if kind is None else None


def _test_name(entries: list[Entry], kind: str) -> str:
    case = _case_of(entries[0].doc, kind)
    return case["test"] if case else kind


def _chip_name(chip: str, doc: dict[str, Any]) -> str:
    """The database name for a known chip, else what the machine reported."""
    from benchkit.projection.chips import load_chips

    db = load_chips().get(chip)
    if db is not None:
        return db.label
    env = doc["environment"]
    if chip.startswith("cpu-"):
        return f"{(env.get('cpu') or {}).get('model') or chip} (CPU)"
    return str((env.get("chip") or {}).get("name") or chip)


def _device_label(doc: dict[str, Any]) -> str:
    from benchkit.community.core import ran_on_gpu

    env = doc["environment"]
    if all(ran_on_gpu(c) for c in doc["cases"]):
        return f"GPU ({env.get('backend')})"
    cores = (env.get("cpu") or {}).get("cores_physical")
    return f"CPU{f', {cores} cores' if cores else ''}"


def _short(name: str) -> str:
    return name[:-5] if name.lower().endswith(".gguf") else name


def _fig(values: list[float]) -> dict[str, str] | None:
    """Median, stdev and CoV of pooled iterations, formatted (None when there are none)."""
    if not values:
        return None
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"median": _tps(statistics.median(values)), "stdev": _tps(sd),
            "cv": _pct(sd / mean if mean else None), "n": str(len(values))}


def _tps(value: Any) -> str:
    return fmt_tps(None if value is None else float(value))


def _pct(value: Any) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _os(env: dict[str, Any]) -> str:
    os_ = env.get("os") or {}
    version = os_.get("version") or ""
    return " ".join(str(x) for x in (os_.get("system"), os_.get("release")) if x) + (
        f" ({version})" if version else "")
