import json

TEXT = "The fire crews worked through the night. Residents were told to stay inside.\n"


def test_score_json_and_lines(tmp_path, cli):
    f = tmp_path / "t.txt"
    f.write_text(TEXT + "Another line of text here.\n")
    code, out, _ = cli(["detect", "score", str(f), "-m", "ngram", "--json", "--lines", "-d", "logrank"])
    rows = json.loads(out)
    assert code == 0 and len(rows) == 2 and rows[0]["verdict"] == "undecided" and set(rows[0]["scores"]) == {"logrank"}


def test_bad_inputs_exit_2(tmp_path, cli):
    empty, blank, binary = tmp_path / "e.txt", tmp_path / "b.txt", tmp_path / "x.txt"
    empty.write_text("")
    blank.write_text("   \n\t\n")
    binary.write_bytes(b"caf\xe9 au lait")
    for f, msg in ((empty, "empty"), (blank, "empty"), (binary, "not UTF-8")):
        code, _, err = cli(["detect", "score", str(f), "-m", "ngram"])
        assert code == 2 and msg in err and "Traceback" not in err
    code, _, err = cli(["detect", "score", str(tmp_path / "none.txt"), "-m", "ngram"])
    assert code == 2 and "does not exist" in err
    code, _, err = cli(["detect", "score", str(blank), "-m", "ngram", "-d", "nope"])
    assert code == 2
    code, _, err = cli(["detect", "score", str(empty), "-m", "gpt9"])
    assert code == 2


def test_explain_html_and_calibrate_then_score(tmp_path, cli):
    f = tmp_path / "t.txt"
    f.write_text(TEXT)
    out_html = tmp_path / "t.html"
    code, out, _ = cli(["detect", "explain", str(f), "-m", "ngram", "--html", str(out_html)])
    assert code == 0 and "top-p=0.9" in out
    page = out_html.read_text()
    assert page.count("<span") == len(TEXT) and "Residents" not in page.split("<span")[0]
    data = tmp_path / "ref.jsonl"
    rows = [{"text": t, "label": 0} for t in ("The council met on Monday to discuss roads.",
                                              "Police said the man was arrested in Sydney.")]
    rows += [{"text": t, "label": 1} for t in ("the the the the the the", "and the and the and the")]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    cal = tmp_path / "cal.json"
    code, _, _ = cli(["detect", "calibrate", str(data), "-m", "ngram", "-d", "likelihood", "--out", str(cal),
                      "--target-fpr", "0.4"])
    saved = json.loads(cal.read_text())
    assert code == 0 and saved["reference"] == "ref.jsonl" and saved["n_human"] == 2
    code, out, _ = cli(["detect", "score", str(f), "-m", "ngram", "--calibration", str(cal), "--json"])
    r = json.loads(out)[0]
    assert r["verdict"] == ("machine" if r["scores"]["likelihood"] >= saved["threshold"] else "human")
    assert r["threshold"]["reference"] == "ref.jsonl"


def test_eval_table(tmp_path, cli):
    data = tmp_path / "p.json"
    data.write_text(json.dumps({"original": ["The council met on Monday.", "Rain fell across the state."],
                                "sampled": ["the the the the the", "and and and and and"]}))
    code, out, _ = cli(["detect", "eval", str(data), "-m", "ngram", "--n-boot", "20", "--json"])
    rows = json.loads(out)
    assert code == 0 and {r["detector"] for r in rows} >= {"logrank", "fast_detectgpt"}
    assert all(r["n_human"] == 2 for r in rows)
