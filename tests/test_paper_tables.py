"""The paper's tables in the evaluation report (issue 24): every table 1-9 as data with known
printed values and the paper's own cross-references; each layout shows the paper's columns in
the paper's order; rendered pages carry the paper's rows and ours, and every cell we do not
compute says why; the ablation report writes one row per evaluation; run facts for the scaling
tables; an evaluation from before FOMM's AKD is not shown as FOMM's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from torch import nn

from gaia.common.paper_numbers import REAL_VIDEO, REAL_VIDEO_SYNC_D, TABLES
from gaia.evaluation.ablation import load_runs, write_ablation
from gaia.evaluation.paper_tables import LAYOUTS, PAGES, build_table
from gaia.evaluation.report import render_report, upgrade_legacy
from gaia.evaluation.run_facts import run_facts

SHAPES = {1: (5, 4), 2: (4, 8), 3: (4, 8), 4: (4, 3), 5: (4, 3), 6: (5, 4), 7: (4, 8),
          8: (6, 8), 9: (5, 3)}  # (rows, columns) as printed


def test_every_table_is_data_with_its_printed_shape_and_values():
    assert sorted(TABLES) == list(range(1, 10))
    for number, (rows, columns) in SHAPES.items():
        assert (len(TABLES[number].rows), len(TABLES[number].columns)) == (rows, columns)
    t = TABLES
    assert t[1].value("Total", "filtered_hours") == 1169 and t[1].value("CC v1", "raw_ids") == 3011
    assert t[2].value("GAIA", "sr_fid") == 15.730 and t[2].value("HeadGAN", "cr_fid") == 90.746
    assert t[3].value("SadTalker", "fid") == 22.322 and t[3].value("MakeItTalk", "jit") == 1.739
    assert t[4].value("VAE 1.7B, 1K h", "sr_fid") == 15.886
    assert t[5].value("Diffusion 180M, 0.1K h", "hours") == 100
    assert t[6].value("w/o disentanglement", "fid") == 140.009
    assert t[7].value("GAIA (VoxCeleb2)", "cr_msi") == 1.035
    assert t[8].value("PD-FGC", "mot") == 4.512 and t[8].value("PC-AVS", "sync_d") == 8.341
    assert t[9].value("w/ Transformer", "msi") == 0.623
    for number in (3, 8):
        assert t[number].value(REAL_VIDEO, "sync_d") == REAL_VIDEO_SYNC_D == 8.548
        assert t[number].value(REAL_VIDEO, "msi") is None
    assert t[2].source("FOMM") == "GAIA table 2, row 'FOMM'"
    assert "caption" in t[8].source(REAL_VIDEO)


def test_the_papers_own_cross_references_hold_in_the_data():
    """The same experiment printed twice must read the same: a typo in one copy fails."""
    t = TABLES
    for method in ("FOMM", "HeadGAN", "face-vid2vid"):
        assert t[2].row(method).values == t[7].row(method).values
    for row in t[3].rows:
        assert t[8].row(row.method).values == row.values
    # GAIA 700M + 180M trained on 1K hours: tables 5, 6 and 9
    assert t[5].value("Diffusion 180M, 1K h", "sync_d") == t[6].value("GAIA", "sync_d") == \
        t[9].value("GAIA (700M + 180M)", "sync_d") == 8.913
    assert t[6].row("GAIA").values[:3] == t[9].row("GAIA (700M + 180M)").values
    # the 700M VAE on 1K hours is table 2's GAIA; the 1.2B diffusion model is table 3's
    assert t[4].value("VAE 700M, 1K h", "sr_fid") == t[2].value("GAIA", "sr_fid")
    assert t[5].value("Diffusion 1.2B, 1K h", "sync_d") == t[3].value("GAIA", "sync_d")
    assert sum(r.values[3] for r in t[1].rows[:-1]) == t[1].value("Total", "filtered_hours")


def test_layouts_show_the_papers_columns_in_its_order():
    for number, layout in LAYOUTS.items():
        paper = [c.id for name, columns in layout.groups if name != "Ours only"
                 for c in columns]
        assert paper == list(TABLES[number].columns), number
    video = [c.label for c in LAYOUTS[2].columns][:8]
    assert video == ["FID", "LPIPS", "PSNR", "AKD", "MSI", "FID", "AKD", "MSI"]
    assert [c.id for c in LAYOUTS[7].columns] == [c.id for c in LAYOUTS[2].columns]
    assert PAGES == {"vae": (2, 7, 4), "s2m": (3, 8, 5), "ablation": (6, 9, 5, 4)}


def vae_metrics() -> dict:
    return {"checkpoint": "run/checkpoints/step-00000300.pt", "step": 300,
            "config": "vae-tiny", "image_size": 64,
            "detector": "dlib's 68-point shape predictor in dlib's HOG face boxes",
            "run": {"parameters": 1_106_243, "train_hours": None,
                    "train_hours_note": "no manifest.parquet in the training shards X"},
            "self_reconstruction": {"fid": 12.3456, "lpips": None, "psnr": 21.5, "akd": 1.25,
                                    "akd_euclidean": 1.96, "msi": 0.91, "msi_real": 0.8,
                                    "l1": 0.1},
            "cross_reenactment": {"fid": 30.5, "akd": 2.5, "akd_euclidean": 3.9, "msi": None},
            "notes": ["LPIPS (alex): n/a. LPIPS (alex) needs AlexNet's weights"]}


def s2m_metrics(sync: bool) -> dict:
    summary = {"mean": None, "std": None, "n": 0}
    metrics = {"sync_d": {"mean": 9.1, "std": 0.1, "n": 2} if sync else summary,
               "sync_c": {"mean": 1.5, "std": 0.1, "n": 2} if sync else summary,
               "sync_d_real": {"mean": 8.2, "std": 0.1, "n": 2} if sync else summary,
               "msi": {"mean": 1.25, "std": 0.1, "n": 2},
               "msi_real": {"mean": 0.75, "std": 0.1, "n": 2}, "fid": None}
    notes = ["FID: n/a, no weights given."]
    if not sync:
        notes.append("Sync-C, Sync-D: n/a, no weights given.")
    return {"checkpoint": "s2m/checkpoints/step-00000400.pt", "step": 400,
            "config": "s2m-tiny", "metrics": metrics, "notes": notes,
            "provenance": {"videos": "shards/vae"},
            "run": {"parameters": 351_299, "train_hours": 0.25, "train_hours_note": None,
                    "model": {"speech_condition": "add", "reference_condition": "attention",
                              "use_pose": True}}}


def cells(html: str) -> list[str]:
    """The text of every table cell (tags inside removed)."""
    return [re.sub(r"<[^>]+>", " ", c).strip() for c in
            re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)]


def assert_every_cell_says_something(html: str) -> None:
    for text in cells(html):
        assert text and text.strip("-— ") == text.strip() and text.strip("-—"), repr(text)
    missing = [re.sub(r"<[^>]+>", " ", c).strip()
               for c in re.findall(r'<td class="na">(.*?)</td>', html, flags=re.S)]
    assert missing and all(len(m) > 8 for m in missing), missing


def test_vae_page_has_tables_2_7_4_with_the_papers_rows_and_ours():
    html = render_report(vae_metrics(), "vae")
    assert [int(n) for n in re.findall(r'<h2 id="table-(\d)">', html)] == [2, 7, 4]
    for printed in ("23.843", "90.746", "15.730", "16.099", "27.643", "15.886", "0.5K", "1.7B"):
        assert printed in html, printed
    assert "Ours (this run)" in html
    for ours in ("12.346", "21.500", "1.250", "1.960", "30.500", "1.11M"):
        assert ours in html, ours  # SR FID, PSNR, FOMM's AKD, Euclidean AKD, CR FID, params
    assert "n/a: no LPIPS weights (--alex-weights or --vgg-weights)" in html
    assert "n/a: no manifest.parquet in the training shards X" in html
    assert "dlib&#39;s 68-point shape predictor" in html and "FOMM" in html
    assert_every_cell_says_something(html)


@pytest.mark.parametrize("sync", [True, False])
def test_s2m_page_has_tables_3_8_5_subjective_as_the_papers_and_the_real_video(sync):
    html = render_report(s2m_metrics(sync), "s2m")
    assert [int(n) for n in re.findall(r'<h2 id="table-(\d)">', html)] == [3, 8, 5]
    for printed in ("4.362", "9.932", "2.797", "58.943", "4.512", "8.548", "1.2B"):
        assert printed in html, printed
    assert html.count("not rated: human ratings") >= 2 * 2 * 5  # ours and ours-real, 3 and 8
    assert "1.250" in html and "0.750" in html  # MSI of ours and of the real frames
    assert "n/a: no Inception weights (--inception-weights)" in html
    if sync:
        assert "9.100" in html and "8.200" in html and "--syncnet-weights" not in html
    else:
        assert html.count("n/a: no SyncNet weights (--syncnet-weights)") >= 2 * 2 + 1
    real_rows = re.findall(r'<tr class="ours-real">(.*?)</tr>', html, flags=re.S)
    assert len(real_rows) == 2 and all("real video" in r for r in real_rows)
    assert_every_cell_says_something(html)


def test_an_evaluation_from_before_fomms_akd_is_not_shown_as_fomms():
    old = vae_metrics()
    for section in ("self_reconstruction", "cross_reenactment"):
        old[section].pop("akd_euclidean")
    upgraded = upgrade_legacy(old)
    assert upgraded["self_reconstruction"]["akd"] is None
    assert upgraded["self_reconstruction"]["akd_euclidean"] == 1.25
    table = build_table(2, [("old", "", upgraded)])
    ours = table["rows"][-1]["cells"]
    assert ours[3]["missing"] and "Euclidean AKD only" in ours[3]["text"]
    assert upgrade_legacy(vae_metrics()) == vae_metrics()


def test_ablation_report_writes_one_row_per_evaluation(tmp_path):
    from gaia.cli import main

    paths = []
    for n, sync in enumerate((True, False)):
        path = tmp_path / f"run{n}.json"
        path.write_text(json.dumps(s2m_metrics(sync)))
        paths.append(path)
    runs = load_runs(paths, ["full model", "w/o SyncNet"])
    page, data = write_ablation(tmp_path / "ablation.html", runs)
    html = page.read_text()
    assert [int(n) for n in re.findall(r'<h2 id="table-(\d)">', html)] == [6, 9, 5, 4]
    table_6 = html[html.index('id="table-6"'):html.index('id="table-9"')]
    ours = re.findall(r'<tr class="ours">(.*?)</tr>', table_6, flags=re.S)
    assert len(ours) == 2 and "full model" in ours[0] and "w/o SyncNet" in ours[1]
    assert "9.100" in ours[0] and "no SyncNet weights" in ours[1]
    assert "speech add, reference attention" in ours[0] and "140.009" in table_6
    assert "No `gaia eval vae` evaluation among the inputs" in html  # table 4
    assert_every_cell_says_something(html)
    tables = json.loads(data.read_text())["tables"]
    assert [t["number"] for t in tables] == [6, 9, 5, 4]
    with pytest.raises(ValueError, match="2 labels for 1"):
        load_runs(paths[:1], ["a", "b"])
    (tmp_path / "other.json").write_text("{}")
    with pytest.raises(ValueError, match="not the JSON of"):
        load_runs([tmp_path / "other.json"])
    assert main(["eval", "ablation", *map(str, paths), "--report",
                 str(tmp_path / "cli.html")]) == 0
    assert "run1" in (tmp_path / "cli.html").read_text()  # labelled by file name


def test_run_facts_count_parameters_and_the_train_splits_hours(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    pq.write_table(pa.table({"split": ["train", "train", "val"], "start_s": [0.0, 10.0, 0.0],
                             "end_s": [1800.0, 1810.0, 900.0]}), shards / "manifest.parquet")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    checkpoint = run / "checkpoints" / "step-00000010.pt"
    model = nn.Linear(3, 2)  # 8 parameters
    facts = run_facts(checkpoint, model)
    assert facts["parameters"] == 8 and facts["train_hours"] is None
    assert "no run config.json" in facts["train_hours_note"]
    config = {"task": "vae", "options": {"shards": str(shards)}, "model": {"name": "x"}}
    (run / "config.json").write_text(json.dumps(config))
    facts = run_facts(checkpoint, model)
    assert facts["train_hours"] == pytest.approx(1.0) and facts["model"] == {"name": "x"}
    config["options"]["shards"] = str(Path(tmp_path / "absent"))
    (run / "config.json").write_text(json.dumps(config))
    assert "no manifest.parquet" in run_facts(checkpoint, model)["train_hours_note"]
    config["data_subset"] = {"max_hours": 0.5, "hours": 0.4975}  # a --max-hours run's record
    (run / "config.json").write_text(json.dumps(config))
    assert run_facts(checkpoint, model)["train_hours"] == 0.4975
