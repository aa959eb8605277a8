"""The attacker's and the unlucky user's inputs, where values enter labbook.

Each table row is one hostile value: it must be refused with a LabbookError naming the
field and the rule (nothing half-written), or stored and shown escaped, never crash.
"""

from __future__ import annotations

import csv
import io
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import labbook
from conftest import git, run_ids
from labbook.cli import cli
from labbook.errors import FilterSyntaxError
from labbook.format import validation


def _tip(repo: Path) -> str:
    return git(repo, "rev-parse", "-q", "--verify", "experiments", check=False).strip()


def _invoke(*args: str, stdin: str | None = None):
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


# -- item 2: limits where values enter ------------------------------------------------------

NUL, SURROGATE = "a\x00b", "bad \udcff text"
BIG = "x" * (validation.MAX_NOTE_BYTES + 1) if hasattr(validation, "MAX_NOTE_BYTES") else "x" * (2 << 20)

def _nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _nested_dict(depth: int) -> dict:
    value: dict = {"leaf": 1}
    for n in range(depth):
        value = {f"k{n}": value}
    return value


def _self_list() -> list:
    value: list = [1]
    value.append(value)
    return value


ENTRY_CASES = [
    ("param value NUL", lambda: labbook.log_param("p", NUL), "param 'p'"),
    ("param value surrogate", lambda: labbook.log_param("p", SURROGATE), "param 'p'"),
    ("param list item NUL", lambda: labbook.log_param("p", ["ok", NUL]), "param 'p'"),
    ("param key surrogate", lambda: labbook.log_param("k\udcff", 1), "param"),
    ("param key NUL in a dict", lambda: labbook.log_params({"k\x00": 1}), "param"),
    ("metric key surrogate", lambda: labbook.log_metric("m\ud800", 1.0), "metric"),
    ("step above int64", lambda: labbook.log_metric("m", 1.0, step=2 ** 63), "step"),
    ("step below int64", lambda: labbook.log_metric("m", 1.0, step=-(2 ** 63) - 1), "step"),
    ("steps above int64", lambda: labbook.log_metrics({"m": 1.0}, step=2 ** 64), "step"),
    ("timestamp above int64", lambda: labbook.log_metric("m", 1.0, timestamp=2 ** 63), "timestamp"),
    ("param int above int64", lambda: labbook.log_param("p", 2 ** 64), "param 'p'"),
    ("param lists nested deep", lambda: labbook.log_param("p", _nested_list(5_000)), "param 'p'"),
    ("param dicts nested deep", lambda: labbook.log_params(_nested_dict(5_000)), "params under"),
    ("param list holding itself", lambda: labbook.log_param("p", _self_list()), "param 'p'"),
    ("metric beyond a float", lambda: labbook.log_metric("m", 10 ** 400), "metric 'm'"),
    ("tag value NUL", lambda: labbook.set_tag("t", NUL), "tag 't'"),
    ("tag value surrogate", lambda: labbook.set_tag("t", SURROGATE), "tag 't'"),
    ("tag value too long", lambda: labbook.set_tag("t", "v" * 8001), "tag 't'"),
    ("note NUL", lambda: labbook.note(NUL), "note"),
    ("note surrogate", lambda: labbook.note(SURROGATE), "note"),
    ("note too big", lambda: labbook.note(BIG), "note"),
    ("conclusion NUL", lambda: labbook.active_run().conclude("supported", NUL), "conclusion"),
    ("conclusion too big", lambda: labbook.active_run().conclude("refuted", BIG), "conclusion"),
]


@pytest.mark.parametrize("label,call,names", ENTRY_CASES, ids=[c[0] for c in ENTRY_CASES])
def test_bad_values_are_refused_naming_the_field_and_nothing_is_written(repo: Path, label, call,
                                                                        names):
    with labbook.start_run() as run:
        labbook.log_param("kept", 1)
        run.checkpoint()
        before = _tip(repo)
        with pytest.raises(labbook.InvalidValue) as caught:
            call()
        assert _tip(repo) == before, "a refused value must not be committed"
    message = str(caught.value)
    assert names in message and "allowed" in message, message
    record = labbook.get_run(run.id)
    assert record.params == {"kept": 1} and record.status == "FINISHED"
    assert not record.notes and record.conclusion is None and record.tags.get("t") is None


START_CASES = [
    ("run name NUL", {"name": "r\x00"}, "run name"),
    ("run name newline", {"name": "line1\nline2"}, "run name"),
    ("run name escape", {"name": "\x1b[2Jgone"}, "run name"),
    ("run name too long", {"name": "n" * 251}, "run name"),
    ("run name surrogate", {"name": "r\udcff"}, "run name"),
    ("hypothesis NUL", {"hypothesis": "h\x00"}, "hypothesis"),
    ("hypothesis too big", {"hypothesis": "h" * (64 * 1024 + 1)}, "hypothesis"),
    ("experiment name NUL", {"experiment": "e\x00"}, "experiment name"),
    ("experiment name too long", {"experiment": "e" * 251}, "experiment name"),
    ("experiment name CR", {"experiment": "e\rx"}, "experiment name"),
]


@pytest.mark.parametrize("label,kwargs,names", START_CASES, ids=[c[0] for c in START_CASES])
def test_bad_names_at_start_are_refused_before_anything_is_committed(repo: Path, label, kwargs,
                                                                     names):
    labbook.init()
    before = _tip(repo)
    with pytest.raises(labbook.InvalidValue, match=names):
        labbook.start_run(**kwargs)
    assert _tip(repo) == before
    assert labbook.active_run() is None


def test_a_bad_tag_at_start_leaves_no_run_and_no_journal_behind(repo: Path):
    labbook.init()
    before = _tip(repo)
    with pytest.raises(labbook.InvalidValue, match="tag 't'"):
        labbook.start_run(tags={"t": "v\x00"})
    assert _tip(repo) == before and labbook.active_run() is None
    labbook.tracking.reset()
    labbook.set_repository(repo)
    assert labbook.tracking.recover() == [] and run_ids(repo) == []


@pytest.mark.parametrize("args,names", [
    (["-p", "k=" + "v" * 6001], "param 'k'"),
    (["-n", "n" * 251], "run name"),
    (["-t", "t=" + "v" * 8001], "tag 't'"),
    (["--hypothesis", "h" * (64 * 1024 + 1)], "hypothesis"),
    (["-e", "e" * 251], "experiment name"),
])
def test_labbook_run_refuses_bad_values_before_the_run_exists(repo: Path, args, names):
    labbook.init()
    result = _invoke("run", *args, "--", sys.executable, "-c", "print('ran')")
    assert result.exit_code == 1 and names in result.output, result.output
    assert "ran" not in result.output and run_ids(repo) == []


def test_a_cli_note_that_would_overfill_the_record_is_refused(repo: Path,
                                                            monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(validation, "MAX_RECORD_BYTES", 32 * 1024, raising=False)
    with labbook.start_run() as run:
        pass
    before = _tip(repo)
    result = _invoke("note", run.id, "-", stdin="w" * 40_000)
    assert result.exit_code == 1 and "record" in result.output and "allowed" in result.output
    assert _tip(repo) == before


def test_bad_experiment_names_and_descriptions_are_refused(repo: Path):
    with pytest.raises(labbook.InvalidValue, match="experiment name"):
        labbook.set_experiment("x\x00")
    with pytest.raises(labbook.InvalidValue, match="description"):
        labbook.set_experiment("fine", description="d" * (64 * 1024 + 1))
    with pytest.raises(labbook.InvalidValue, match="description"):
        labbook.set_experiment("fine", description="d\udcff")


def test_a_65_mib_note_is_refused_and_the_run_stays_readable(repo: Path):
    with labbook.start_run() as run, pytest.raises(labbook.InvalidValue, match="note"):
        labbook.note("n" * (65 << 20))
    assert labbook.get_run(run.id).status == "FINISHED"
    assert len(labbook.search_runs()) == 1


def test_the_whole_record_is_capped_before_it_is_committed(repo: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(validation, "MAX_RECORD_BYTES", 64 * 1024, raising=False)
    with labbook.start_run() as run:
        with pytest.raises(labbook.InvalidValue, match="record"):
            for n in range(20):
                labbook.note(f"note {n}: " + "w" * 8000)
        with pytest.raises(labbook.InvalidValue, match="record"):
            for n in range(20):
                labbook.log_param(f"p{n}", "v" * 5000)
        assert run.notes == labbook.get_run(run.id).notes  # the refusals changed nothing
    rec = labbook.get_run(run.id)  # committed, readable, and under the cap
    assert rec.status == "FINISHED" and 0 < len(rec.notes) < 20
    data = git(repo, "show", f"experiments:runs/{run.id[:2]}/{run.id}/run.yaml").encode()
    assert len(data) <= 64 * 1024


def test_new_metric_keys_stop_at_the_record_cap(repo: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(validation, "MAX_RECORD_BYTES", 32 * 1024, raising=False)
    with labbook.start_run() as run:
        accepted = 0
        with pytest.raises(labbook.InvalidValue, match="record"):
            for n in range(2_000):
                labbook.log_metrics({f"metric_{n}": float(n)}, step=0)
                accepted += 1
        labbook.log_metric("metric_0", 2.0, step=1)  # known keys go on logging
    rec = labbook.get_run(run.id)
    assert len(rec.metrics) == accepted > 50 and rec.metrics["metric_0"] == 2.0


def test_notebook_edits_from_the_cli_are_limited_too(repo: Path):
    with labbook.start_run(name="target") as run:
        pass
    result = _invoke("note", run.id, "-", stdin="n" * (validation.MAX_NOTE_BYTES + 10))
    assert result.exit_code == 1 and "note" in result.output and "allowed" in result.output
    result = _invoke("rename", run.id, "x" * 300)
    assert result.exit_code == 1 and "run name" in result.output
    result = _invoke("tag", run.id, "k=" + "v" * 9000)
    assert result.exit_code == 1 and "tag 'k'" in result.output
    result = _invoke("conclude", run.id, "c" * (validation.MAX_NOTE_BYTES + 1),
                     "--verdict", "refuted")
    assert result.exit_code == 1 and "conclusion" in result.output
    result = _invoke("experiment", "create", "e" * 300)
    assert result.exit_code == 1 and "experiment name" in result.output
    rec = labbook.get_run(run.id)
    assert rec.name == "target" and not rec.notes and not rec.tags and rec.conclusion is None


def test_cli_input_that_is_not_utf8_is_a_clear_error(repo: Path):
    with labbook.start_run() as run:
        pass
    for args, stdin in ((["note", run.id, "-"], b"bad \xff\xfe bytes"),
                        (["tag", run.id, b"k=\xff"], b""),
                        (["rename", run.id, b"name \xff"], b"")):
        argv = [sys.executable, "-m", "labbook", *[os.fsencode(a) for a in args]]
        proc = subprocess.run(argv, cwd=repo, input=stdin, capture_output=True)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 1 and err.startswith("labbook: error:"), err
        assert "not UTF-8" in err and "Traceback" not in err
    assert labbook.get_run(run.id).notes == []


def test_rename_refuses_control_characters_and_surrogates(repo: Path):
    with labbook.start_run(name="target") as run:
        pass
    repository = labbook.tracking.repository()
    from labbook.runs import edits
    for bad in ("new\nname", "new\x00", "new\udcff", "\x1b]0;title\x07"):
        with pytest.raises(labbook.InvalidValue, match="run name"):
            edits.rename(repository, run.id, bad)
    labbook.set_experiment("kept")
    for bad in ("e\x00", "e\n", "e" * 251):
        with pytest.raises(labbook.InvalidValue, match="experiment name"):
            edits.rename_experiment(repository, "kept", bad)


def test_an_experiment_named_like_another_ones_slug_does_not_replace_it(repo: Path):
    from labbook.format.record import experiment_slug
    first = labbook.set_experiment("My Study")
    second = labbook.set_experiment(experiment_slug("My Study"))  # a name of its own, a file of its own
    assert first.slug == experiment_slug("My Study") and second.slug != first.slug
    names = sorted(labbook.list_experiments()["experiment"])
    assert names == sorted(["My Study", experiment_slug("My Study")])


def test_a_renamed_experiment_is_found_by_its_new_name(repo: Path):
    from labbook.runs import edits
    labbook.set_experiment("Alpha")
    with labbook.start_run():
        pass
    edits.rename_experiment(labbook.tracking.repository(), "Alpha", "Beta")
    labbook.tracking.reset()
    labbook.set_repository(repo)
    labbook.set_experiment("Beta")
    with labbook.start_run():
        pass
    frame = labbook.list_experiments()
    assert list(frame["experiment"]) == ["Beta"] and list(frame["runs"]) == [2]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_any_text_is_either_refused_clearly_or_round_trips_through_a_record(text: str):
    from labbook.format import record
    try:
        checked = validation.check_text(text, "note", validation.MAX_NOTE_BYTES)
    except labbook.InvalidValue as exc:
        assert "note" in str(exc)
        assert "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
        return
    rec = record.RunRecord(id="a" * 32, name="n", experiment="e", status="RUNNING",
                           start_time="2024-01-01T00:00:00.000Z", params={"p": checked},
                           tags={"t": checked})
    back = record.run_from_yaml(record.run_to_yaml(rec), "run.yaml")
    assert back.params["p"] == checked and back.tags["t"] == checked


def test_a_script_started_with_non_utf8_arguments_can_log(repo: Path):
    script = repo / "train_bytes.py"
    script.write_text("import labbook\nwith labbook.start_run(name='bytes') as run:\n"
                      "    labbook.log_metric('m', 1.0)\nprint(run.id)\n")
    proc = subprocess.run([os.fsencode(sys.executable), os.fsencode(script), b"--out=\xff\xfe.bin"],
                          cwd=repo, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    rec = labbook.get_run(proc.stdout.decode().strip())
    assert rec.status == "FINISHED" and rec.record.command[-1] == "--out=\\xff\\xfe.bin"


def test_an_exception_with_undecodable_text_still_ends_the_run_failed(repo: Path):
    with pytest.raises(ValueError), labbook.start_run() as run:
        raise ValueError("bad \udcff and \x00 bytes")
    rec = labbook.get_run(run.id)
    assert rec.status == "FAILED" and rec.record.error == "ValueError: bad \\xff and \\x00 bytes"


TRICKY_TEXT = ["\ufeffbom", "non\ufffechar", "max \U0010ffff", "nel\x85x", "ls\u2028x",
               "esc\x1b[31m", "crlf\r\nx", "tab\tx", "bell\x07", "del\x7f", "emoji \U0001f600",
               "  spaced  ", "'quoted'", '"dq"', "# hash", "key: value", "- item", "|", ">",
               "yes", "0755", "1e3", "~", "null", "[bold]x[/bold]", "\\x1b literal"]


def test_tricky_text_round_trips_through_every_reader(repo: Path):
    with labbook.start_run() as run:
        for n, text in enumerate(TRICKY_TEXT):
            labbook.log_param(f"p{n}", text)
            labbook.set_tag(f"t{n}", text)
        labbook.note("\n".join(TRICKY_TEXT))
    rec = labbook.get_run(run.id)
    frame = labbook.search_runs()
    for n, text in enumerate(TRICKY_TEXT):
        assert rec.params[f"p{n}"] == text and rec.tags[f"t{n}"] == text
        assert frame[f"params.p{n}"][0] == text and frame[f"tags.t{n}"][0] == text
    assert rec.notes[0].text == "\n".join(TRICKY_TEXT)


# -- item 2: control characters are stored, and escaped when the CLI prints them -----------

HOSTILE_TEXT = "\x1b[31mred\x1b[0m\rover\x07 [bold]loud[/bold] :thumbs_up: \u202eevil"


@pytest.fixture
def hostile_run(repo: Path) -> str:
    labbook.set_experiment("study", description="asks \x1b[2J" + "[red]why[/red]")
    with labbook.start_run(name="plain") as run:
        labbook.log_param("p", HOSTILE_TEXT)
        labbook.set_tag("t", HOSTILE_TEXT)
        labbook.log_metric("m", 1.0)
        labbook.note(HOSTILE_TEXT)
    assert labbook.get_run(run.id).tags["t"] == HOSTILE_TEXT  # stored as given
    return run.id


def _assert_escaped(output: str) -> None:
    for raw in ("\x1b", "\r", "\x07", "\u202e"):
        assert raw not in output, f"{raw!r} printed raw: {output!r}"
    assert "\\x1b" in output or "\\u001b" in output


@pytest.mark.parametrize("args", [
    ["ls", "--columns", "run_name,params.p,tags.t"],
    ["ls", "--columns", "run_name,params.p,tags.t", "--format", "markdown"],
    ["ls", "--columns", "run_name,params.p,tags.t", "--format", "csv"],
    ["ls", "--columns", "run_name,params.p,tags.t", "--format", "json"],
    ["show", "{run}"],
    ["compare", "{run}", "{run}"],
    ["experiments"],
], ids=["ls", "ls-markdown", "ls-csv", "ls-json", "show", "compare", "experiments"])
def test_control_characters_are_escaped_whenever_the_cli_prints_them(hostile_run: str, args):
    result = _invoke(*[a.format(run=hostile_run) for a in args])
    assert result.exit_code == 0, result.output
    if args[0] == "experiments":
        assert "\x1b" not in result.output and "[red]why[/red]" in result.output
        return
    _assert_escaped(result.output)
    if args[0] in ("ls", "compare") and "json" not in args:
        assert "[bold]loud[/bold]" in result.output, "rich markup must be shown, not applied"
        assert ":thumbs_up:" in result.output


def test_messages_escape_what_the_user_typed(repo: Path):
    labbook.init()
    result = _invoke("show", "\x1b]0;pwned\x07name")
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "\\x1b]0;pwned" in result.output
    with labbook.start_run(name="plain") as run:
        pass
    result = _invoke("tag", run.id, "k=\x1b]0;pwned\x07\rv")
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\r" not in result.output
    assert labbook.get_run(run.id).tags["k"] == "\x1b]0;pwned\x07\rv"  # stored as given


def test_cli_lines_naming_a_teammates_run_escape_its_name(repo: Path):
    with labbook.start_run(name="plain") as run:
        pass
    # a teammate's hand edit put an escape sequence in the name
    path = f"runs/{run.id[:2]}/{run.id}/run.yaml"
    text = git(repo, "show", f"experiments:{path}").replace("name: plain",
                                                            'name: "\\e[2Jevil\\r"')
    repository = labbook.tracking.repository()
    repository.store.commit({path: text.encode()}, "hand edit")
    for args in (["note", run.id, "hello"], ["tag", run.id, "a=b"], ["ls"], ["show", run.id]):
        result = _invoke(*args)  # read as a run, or skipped as a bad record: never printed raw
        assert "\x1b" not in result.output and "\r" not in result.output, (args, result.output)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_the_escaper_leaves_no_terminal_control_behind(text: str):
    from labbook.reading.display import escape_controls
    shown = escape_controls(text)
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp")
                   for ch in shown if ch not in "\n\t")
    assert escape_controls("plain text, [bold] kept") == "plain text, [bold] kept"


# -- item 4: artifacts --------------------------------------------------------------------

BAD_ARTIFACT_PATHS = [
    "a%2e%2e/b", "%2e%2e", "a?b", "a#b", "a\\b", "a//b", "./a", "a/./b", "a/", "",
    ".gitmodules", ".GITMODULES", "x/.gitattributes", ".GitAttributes", ".gitmodules\u200d",
    "\u200c.gitmodules", ".gitmodules.", "GITMOD~1", "git~1", ".git\ufeff", "x/.git",
    "a\x00b", "a\x1bb", "a\u202eb", "/abs", "C:/x", "n" * 256, "/".join(["d"] * 600),
]


@pytest.mark.parametrize("bad", BAD_ARTIFACT_PATHS)
def test_artifact_paths_must_be_plain_relative_paths_of_safe_segments(repo: Path, bad: str):
    (repo / "f.txt").write_text("x")
    with labbook.start_run() as run:
        before = _tip(repo)
        with pytest.raises(labbook.InvalidValue, match="artifact path"):
            labbook.log_artifact("f.txt", artifact_path=bad)
        assert _tip(repo) == before
    assert run.artifacts == []


_PATH_PIECES = st.sampled_from(["a", "B", ".", "..", "", "/", "\\", "%2e", "?", "#", ".git",
                                 ".GitModules", "gitmod~1", "\u200d", "\ufeff", "\x00", " ", ".",
                                 "\u0130", "\u212a", "\u00e9", "x.txt"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_PATH_PIECES, max_size=8).map("".join) | st.text(max_size=30))
def test_an_accepted_artifact_path_is_safe_in_a_tree_and_on_every_file_system(path: str):
    from labbook.storage.store import check_path
    try:
        checked = validation.artifact_path(path)
    except labbook.InvalidValue as exc:
        assert "artifact path" in str(exc)
        return
    assert checked == path and not path.startswith("/")
    check_path(checked)  # what the branch store itself accepts
    for part in checked.split("/"):
        assert part not in ("", ".", "..") and not set(part) & set("\\%?#")
        folded = "".join(ch for ch in part if not validation.is_control(ch)).casefold()
        assert folded.rstrip(". ") not in (".git", ".gitmodules", ".gitattributes")
        assert not any(validation.is_control(ch) for ch in part)
        assert not re.match(r"^[^~]{1,6}~[0-9]+(\.[^.]*)?$", folded.rstrip(". "))  # 8.3 names


def test_a_folder_named_gitmodules_is_refused_and_pushes_keep_working(repo: Path, tmp_path: Path):
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(remote, "config", "receive.fsckObjects", "true")
    git(repo, "remote", "add", "origin", str(remote))
    out = repo / "out"
    (out / ".gitmodules").mkdir(parents=True)
    (out / ".gitmodules" / "x.txt").write_text("payload")
    (out / "ok.txt").write_text("fine")
    with labbook.start_run() as run:
        with pytest.raises(labbook.InvalidValue, match=".gitmodules"):
            labbook.log_artifacts(out)
        labbook.log_artifact(out / "ok.txt")
    assert [a.path for a in run.artifacts] == ["ok.txt"]  # the folder was refused as a whole
    labbook.tracking.push("origin")
    with labbook.start_run():
        labbook.log_metric("m", 1.0)
    labbook.tracking.push("origin")
    assert run_ids(remote) == run_ids(repo)
    git(remote, "fsck", "--strict")


def test_a_file_named_gitmodules_is_refused_by_its_default_name(repo: Path):
    (repo / "sub").mkdir()
    (repo / "sub" / ".gitmodules").write_text("[submodule]")
    with labbook.start_run(), pytest.raises(labbook.InvalidValue, match="git"):
        labbook.log_artifact("sub/.gitmodules")


def _log_as(tmp_path: Path, name: str):
    """Log a file so that its artifact path is exactly ``name``."""
    folder, _, base = name.rpartition("/")
    scratch = tmp_path / f"scratch{len(list(tmp_path.glob('scratch*')))}"
    scratch.mkdir()
    (scratch / base).write_text(name)
    return labbook.log_artifact(scratch / base, artifact_path=folder or None)


@pytest.mark.parametrize("first,second", [("Model.bin", "model.bin"), ("a/B.txt", "A/b.txt"),
                                          ("plots", "plots/a.png"), ("x/y", "x"),
                                          ("X/y", "x"), ("caf\u00e9.txt", "cafe\u0301.txt")])
def test_names_colliding_on_case_insensitive_filesystems_are_refused(repo: Path, tmp_path: Path,
                                                                     first, second):
    with labbook.start_run() as run:
        _log_as(tmp_path, first)
        before = _tip(repo)
        with pytest.raises(labbook.InvalidValue, match="collides"):
            _log_as(tmp_path, second)
        assert _tip(repo) == before
    assert [a.path for a in run.artifacts] == [first]


def test_colliding_names_within_one_folder_refuse_the_whole_folder(repo: Path):
    out = repo / "out"
    out.mkdir()
    (out / "Report.txt").write_text("one")
    (out / "report.txt").write_text("two")
    with labbook.start_run() as run, pytest.raises(labbook.InvalidValue, match="collides"):
        labbook.log_artifacts(out)
    assert run.artifacts == []


def test_logging_the_same_path_again_replaces_it(repo: Path):
    (repo / "f.txt").write_text("one")
    with labbook.start_run() as run:
        labbook.log_artifact("f.txt")
        (repo / "f.txt").write_text("two")
        labbook.log_artifact("f.txt")
    assert len(run.artifacts) == 1 and run.artifacts[0].size == 3


def test_a_link_to_a_file_under_the_home_directory_is_refused(repo: Path):
    secret = Path(os.environ["HOME"]) / ".ssh" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_text("PRIVATE KEY")
    (repo / "results.txt").symlink_to(secret)
    with labbook.start_run() as run:
        before = _tip(repo)
        with pytest.raises(labbook.ArtifactError, match="link") as caught:
            labbook.log_artifact("results.txt")
        assert str(secret) in str(caught.value)
        assert _tip(repo) == before
    assert run.artifacts == []
    assert "PRIVATE KEY" not in git(repo, "log", "-p", "experiments")


def test_a_folder_link_leading_out_of_the_repository_is_refused(repo: Path):
    home = Path(os.environ["HOME"])
    (home / "notes.txt").write_text("private")
    (repo / "data").symlink_to(home)
    with labbook.start_run(), pytest.raises(labbook.ArtifactError, match="link"):
        labbook.log_artifact("data/notes.txt")


def test_a_link_inside_the_repository_stores_what_it_points_to(repo: Path):
    (repo / "real.txt").write_text("the bytes")
    (repo / "latest.txt").symlink_to(repo / "real.txt")
    with labbook.start_run() as run:
        pointer = labbook.log_artifact("latest.txt")
    assert pointer.path == "latest.txt" and pointer.size == len("the bytes")
    assert labbook.get_run(run.id).artifacts[0].sha256 == pointer.sha256


def _hostile_artifacts(repo: Path, paths: list[str]) -> str:
    """A run whose record (edited by a hostile teammate) points at ``paths``, whose bytes are
    in the artifact store, so only the path can stop a restore."""
    source = repo / "f.txt"
    source.write_text("harmless")
    with labbook.start_run() as run:
        pointer = labbook.log_artifact("f.txt")
    repository = labbook.tracking.repository()
    repository.artifact_store.put(source, pointer.sha256)
    path = f"runs/{run.id[:2]}/{run.id}/run.yaml"
    text = git(repo, "show", f"experiments:{path}")
    entry = (f"- path: f.txt\n  size: {pointer.size}\n  sha256: {pointer.sha256}\n"
             "  location: branch\n")
    assert entry in text, text
    hostile = "".join(entry.replace("path: f.txt", f'path: "{p}"').replace("branch", "store")
                      for p in paths)
    repository.store.commit({path: text.replace(entry, hostile).encode()}, "hostile edit")
    return run.id


@pytest.mark.parametrize("hostile", [["../escape.txt"], ["sub/../../escape.txt"],
                                     ["/tmp/labbook-abs-escape.txt"], ["a\\x00b"],
                                     ["a", "a/b"], ["."], [""]])
def test_get_never_writes_outside_its_destination_given_a_hostile_record(repo: Path,
                                                                        tmp_path: Path, hostile):
    rid = _hostile_artifacts(repo, hostile)
    dest = tmp_path / "dest"
    dest.mkdir()
    before = {p for p in tmp_path.rglob("*")}
    result = _invoke("get", rid, ".", "-o", str(dest))
    assert result.exit_code == 1, result.output
    assert "labbook: error:" in result.output and "Traceback" not in result.output
    after = {p for p in tmp_path.rglob("*")}
    assert after - before == set(), "nothing may be written when a pointer is hostile"
    assert not Path("/tmp/labbook-abs-escape.txt").exists()


def test_get_does_not_follow_a_link_planted_in_its_destination(repo: Path, tmp_path: Path):
    (repo / "f.txt").write_text("payload")
    with labbook.start_run() as run:
        labbook.log_artifact("f.txt", artifact_path="sub")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    result = _invoke("get", run.id, ".", "-o", str(dest))
    assert result.exit_code == 1 and "link" in result.output
    assert list(outside.iterdir()) == []


def test_start_run_with_an_empty_name_takes_the_default(repo: Path):
    with labbook.start_run(name="") as run:
        pass
    assert run.name == f"run-{run.id[:8]}"


# -- item 6: exports ---------------------------------------------------------------------

FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"x\")"]


@pytest.fixture
def formula_runs(repo: Path) -> list[str]:
    ids = []
    for n, text in enumerate(FORMULAS):
        with labbook.start_run(name=f"r{n}") as run:
            labbook.set_tag("t", text)
            labbook.log_param("lr", "-0.5")
            labbook.log_metric("loss", -1.5)
        ids.append(run.id)
    return ids


def _cells(text: str, column: str) -> list[str]:
    return [row[column] for row in csv.DictReader(io.StringIO(text))]


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(formula_runs, tmp_path: Path):
    out = _invoke("ls", "--columns", "run_name,tags.t,params.lr,metrics.loss", "--format", "csv")
    assert out.exit_code == 0
    exported = tmp_path / "runs.csv"
    assert _invoke("export", "-o", str(exported)).exit_code == 0
    from labbook.format.validation import escape_controls
    for text, shown in ((out.output, escape_controls), (exported.open(newline="").read(), str)):
        tags = _cells(text, "tags.t")
        assert sorted(tags) == sorted(shown("'" + f) for f in FORMULAS), tags
        assert set(_cells(text, "metrics.loss")) == {"-1.5"}, "numbers stay numbers"
        assert set(_cells(text, "params.lr")) == {"-0.5"}, "a text cell that is a plain number stays"


def test_the_dataframe_api_keeps_raw_values(formula_runs):
    frame = labbook.search_runs()
    assert sorted(frame["tags.t"]) == sorted(FORMULAS)


@pytest.mark.parametrize("text", [
    "(" * 10_000 + "metrics.a > 1" + ")" * 10_000,
    "NOT " * 10_000 + "metrics.a > 1",
    "(NOT " * 5_000 + "metrics.a > 1" + ")" * 5_000,
    "(" * 10_000,
])
def test_deep_filters_are_a_syntax_error_not_a_recursion_error(repo: Path, text: str):
    from labbook.reading import filterlang
    with pytest.raises(FilterSyntaxError, match="nest"):
        filterlang.parse(text)
    labbook.init()
    result = _invoke("ls", "--filter", text)
    assert result.exit_code == 1 and "nest" in result.output


def test_reasonable_nesting_still_parses(repo: Path):
    from labbook.reading import filterlang
    depth = filterlang.MAX_DEPTH
    assert filterlang.parse("(" * (depth - 1) + "metrics.a > 1" + ")" * (depth - 1)) is not None
    assert filterlang.parse("NOT " * (depth - 1) + "metrics.a > 1") is not None
    flat = " OR ".join(["metrics.a > 1"] * 5_000)
    assert filterlang.parse(flat) is not None


_FILTER_PIECES = st.sampled_from(["(", ")", "NOT ", " AND ", " OR ", "metrics.a > 1", "'", "`",
                                  "params.x IN (", "1", ",", " IS NULL", "LIKE '%'"])


@settings(max_examples=200, deadline=None)
@given(st.lists(_FILTER_PIECES, max_size=400).map("".join))
def test_any_filter_parses_or_is_a_filter_syntax_error(text: str):
    from labbook.reading import filterlang
    try:
        filterlang.parse(text)
    except FilterSyntaxError as exc:
        assert "filter syntax error" in str(exc) and len(str(exc)) < 600


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab%_A.", max_size=8), st.text(alphabet="abAB._%", max_size=12),
       st.booleans())
def test_like_matches_as_the_sql_wildcards_say(pattern: str, text: str, ignore_case: bool):
    from labbook.reading.query import like
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    expected = re.fullmatch(regex, text, re.DOTALL | (re.IGNORECASE if ignore_case else 0))
    assert like(pattern, text, ignore_case) == (expected is not None)


def test_a_like_pattern_cannot_hang_the_query(repo: Path):
    with labbook.start_run(name="long"):
        labbook.log_param("p", "a" * 6000)
    hostile = "params.p LIKE '" + "%a" * 40 + "%b'"
    proc = subprocess.run([sys.executable, "-m", "labbook", "ls", "--filter", hostile,
                           "--format", "csv"], cwd=repo, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stdout.count("\n") == 1, proc.stderr  # header only
    frame = labbook.search_runs(filter_string="params.p LIKE '" + "%a" * 40 + "%'")
    assert list(frame["run_name"]) == ["long"]


@pytest.mark.parametrize("artifact_file", ["../escape.txt", "..", "a/../../b.txt", ".gitmodules",
                                           "x/.GIT/config", "a?b.txt", "dir/"])
def test_the_mlflow_drop_in_checks_artifact_files_before_writing(repo: Path, artifact_file):
    from labbook import mlflow
    with mlflow.start_run() as active, pytest.raises(mlflow.MlflowException, match="artifact path"):
        mlflow.log_text("payload", artifact_file)
    assert labbook.get_run(active.info.run_id).artifacts == []


def test_the_mlflow_drop_in_refuses_a_link_to_the_home_directory(repo: Path):
    from labbook import mlflow
    secret = Path(os.environ["HOME"]) / "token.txt"
    secret.write_text("secret")
    (repo / "token.txt").symlink_to(secret)
    (repo / "Model.bin").write_text("one")
    (repo / "model.bin").write_text("two")
    with mlflow.start_run() as active:
        with pytest.raises((mlflow.MlflowException, labbook.ArtifactError), match="link"):
            mlflow.log_artifact(str(repo / "token.txt"))
        mlflow.log_artifact(str(repo / "Model.bin"))
        with pytest.raises(mlflow.MlflowException, match="collides"):
            mlflow.log_artifact(str(repo / "model.bin"))
    assert [a.path for a in labbook.get_run(active.info.run_id).artifacts] == ["Model.bin"]
