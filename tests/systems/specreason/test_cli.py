"""``tenfold specreason solve/eval`` with the backends swapped for scripted fakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tenfold.cli import main
from tenfold.errors import UnknownNameError
from tenfold.llm import LLMBackend, ScriptedBackend
from tenfold.systems.specreason import cli as sr_cli

S1, S2_BAD, S2 = "Add 25: 17 + 25 = 42.", "Multiply by 3: 42 * 3 = 127.", "Multiply by 3: 42 * 3 = 126."
S3 = "The answer is \\boxed{126}."


def _fakes(monkeypatch: pytest.MonkeyPatch, small: list[str], base: list[str]) -> None:
    backends = {"S": ScriptedBackend(small), "B": ScriptedBackend(base)}

    def pick(spec: str, pair: str = "arith-v1", pairs: object = None) -> LLMBackend:
        return backends[spec]

    monkeypatch.setattr(sr_cli, "_backend", pick)


def test_solve_prints_marks(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _fakes(monkeypatch, [S1, S2_BAD, S3], ["9", "3", S2, "8"])
    assert main(["specreason", "solve", "Start with 17. Add 25, then multiply by 3. What is the result?",
                 "--small", "S", "--base", "B", "--threshold", "7"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f" 1 [+] score 9 small | {S1}"
    assert lines[1] == f" 2 [x] score 3 base  | {S2}"
    assert lines[2] == f"   rejected draft      | {S2_BAD}"
    assert lines[3] == f" 3 [+] score 8 small | {S3}"
    assert lines[4].startswith("answer: 126  stop: answer  accept_rate: 0.67  tokens: 28")


def test_solve_with_artifact_compat_sends_the_raw_prompt(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenfold.systems.specreason.prompts import math_prompt

    _fakes(monkeypatch, [S3], ["10"])  # str.isdigit: "10" scores 10 and is accepted
    small, base = sr_cli._backend("S"), sr_cli._backend("B")
    assert main(["specreason", "solve", "Start with 126.", "--small", "S", "--base", "B", "--artifact-compat"]) == 0
    assert isinstance(small, ScriptedBackend) and isinstance(base, ScriptedBackend)
    raw = math_prompt("Start with 126.", artifact_compat=True)
    assert small.calls[0].messages == ({"role": "user", "content": raw},)
    assert [c.kind for c in base.calls] == ["next_token"]  # accepted: no base step


def test_eval_reports_accuracy(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    [p] = sr_cli._arith_problems("arith-v1", 1, seed=0)
    _fakes(monkeypatch, p.steps, ["9"] * len(p.steps))
    assert main(["specreason", "eval", "--n", "1", "--small", "S", "--base", "B"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["problems"] == 1 and summary["accuracy"] == 1.0 and summary["acceptance_rate"] == 1.0


def test_bad_names_and_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UnknownNameError, match="tiny-base"):
        sr_cli._backend("tiny-huge")
    assert main(["specreason", "solve", "x", "--small", "http://127.0.0.1:9/v1", "--base", "smollm2",
                 "--threshold", "11"]) == 2
    assert "config field 'threshold' = 11.0: must be in [0.0, 10.0]" in capsys.readouterr().err


def test_serve_puts_the_tiny_base_behind_the_openai_api() -> None:
    """`tenfold specreason serve` as a real process; the judge call goes through the real client."""
    import subprocess
    import sys
    import time

    from tenfold.llm import OpenAIBackend, free_port
    from tenfold.systems.specreason.loop import judge_messages
    from tenfold.systems.specreason.pair import load_pair
    from tenfold.systems.specreason.prompts import math_prompt

    port = free_port()
    tenfold = str(Path(sys.executable).parent / "tenfold")
    proc = subprocess.Popen([tenfold, "specreason", "serve", "--model", "tiny-base", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        remote = OpenAIBackend(f"http://127.0.0.1:{port}/v1")
        deadline = time.monotonic() + 60
        while not remote.health():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else "server exited"
            assert time.monotonic() < deadline, "server not healthy within 60 s"
            time.sleep(0.2)
        prompt = math_prompt("Start with 17. Add 25. What is the result?")
        messages = judge_messages(prompt, [], "Add 25: 17 + 25 = 42.")
        flags = {"add_generation_prompt": False, "continue_final_message": True}
        got = remote.next_token(messages, k=10, **flags)
        _, base = load_pair()
        want = base.next_token(messages, k=10, **flags)
        assert len(got.top) == 10
        assert [t.token for t in got.top] == [t.token for t in want.top]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


# -- train-pair: the output directory and the seed -----------------------------------------------
_TINY = {"small": {"vocab_size": 1, "block_size": 256, "n_layer": 1, "n_head": 2, "n_embd": 16},
         "base": {"vocab_size": 1, "block_size": 256, "n_layer": 1, "n_head": 2, "n_embd": 16},
         "train_problems": 200, "small_max_steps": 2, "small_eval_every": 1, "small_first_eval": 100,
         "small_batch": 2, "small_refine_steps": 0, "base_steps": 2, "base_batch_traces": 1, "base_batch_judge": 1,
         "base_refine_steps": 1, "judge_refine_steps": 1, "judge_batch_traces": 1, "judge_batch_judge": 1,
         "calib_steps": 1, "onpolicy_problems": 2, "eval_problems": 2, "refine_threads": 1}
"""A PairTrainConfig that trains every stage in a few seconds."""


def test_train_pair_refuses_a_directory_that_is_not_a_pair(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Saving replaces the directory, so a foreign one is refused before any training step."""
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["specreason", "train-pair", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"tenfold: error: config field 'out' = {str(tmp_path)!r}: exists and is not a specreason pair "
                   "directory; choose an empty or new directory\n")
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    a_file = tmp_path / "notes.txt"
    assert main(["specreason", "train-pair", "-o", str(a_file)]) == 2
    assert "exists and is not a specreason pair directory" in capsys.readouterr().err


def test_train_pair_into_dot_with_the_config_files_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`-o .` writes the working directory, as `-o $PWD` does; the config file's seed = 3 is used."""
    pytest.importorskip("torch")
    from tenfold.systems.specreason.pair import PairTrainConfig, load_pair_models

    config = tmp_path / "tiny.json"
    config.write_text(json.dumps({**_TINY, "seed": 3}))
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.chdir(out)
    assert main(["specreason", "train-pair", "-o", ".", "--config", str(config), "--name", "tiny"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(out)
    assert sorted(p.name for p in out.iterdir()) == ["base.pt", "manifest.json", "small.pt", "tokenizer.json"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left behind
    pair = load_pair_models(out)
    assert pair.manifest["seed"] == 3 and pair.manifest["complete"] is True
    assert PairTrainConfig.from_dict(pair.manifest["config"]).seed == 3


def test_train_pair_seed_overrides_the_config_only_when_given(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from tenfold.systems.specreason import pair as pair_mod

    seen: list[int] = []

    def fake_train(out: Path, cfg: pair_mod.PairTrainConfig, **_: object) -> dict[str, object]:
        seen.append(cfg.seed)
        return {"files": {}, "metrics": {}, "train_seconds": {}}

    monkeypatch.setattr(pair_mod, "train_pair", fake_train)
    config = tmp_path / "c.toml"
    config.write_text("seed = 3\n")
    out = str(tmp_path / "new")
    assert main(["specreason", "train-pair", "-o", out, "--config", str(config)]) == 0
    assert main(["specreason", "train-pair", "-o", out, "--config", str(config), "--seed", "5"]) == 0
    assert main(["specreason", "train-pair", "-o", out]) == 0
    assert seen == [3, 5, 0]


# -- pair names, eval's problems and --n ---------------------------------------------------------
def test_unknown_pair_name_and_a_directory_without_manifest(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    solve = ["specreason", "solve", "Start with 3.", "--small", "tiny-small", "--base", "tiny-base"]
    assert main([*solve, "--pair", "nosuch"]) == 2
    assert capsys.readouterr().err == "tenfold: error: unknown specreason pair 'nosuch'; known: arith-v1\n"
    assert main([*solve, "--pair", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"tenfold: error: {tmp_path} lacks manifest.json, so it is not a specreason pair directory; "
        "train a pair into it with: tenfold specreason train-pair -o DIR\n")


def test_eval_arith_problems_are_held_out_from_the_pairs_training_problems() -> None:
    """The old default (`--train-size 0`, stream seed + 1) excluded nothing, and --seed -1 drew
    the training stream itself; now every seed's chains avoid all 60,000 training problems."""
    from tenfold.systems.specreason.tasks import generate, text_hash

    train = {text_hash(p.text) for p in generate(60_000, seed=0)}
    assert {text_hash(p.text) for p in generate(20, seed=0)} <= train  # what seed -1 used to give
    drawn = {seed: sr_cli._arith_problems("arith-v1", 20, seed) for seed in (-1, 0, 1)}
    for problems in drawn.values():
        assert len(problems) == 20 and not {text_hash(p.text) for p in problems} & train
    assert len({tuple(p.text for p in ps) for ps in drawn.values()}) == 3
    assert sr_cli._held_out_seed(0, -1) not in (0, 1)


def test_eval_n_defaults_to_the_loaders_and_must_be_positive(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from tenfold.cli import build_parser

    rows = [{"problem": f"q{i}", "answer": "1"} for i in range(150)]
    path = tmp_path / "math.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    base = ["specreason", "eval", "--small", "S", "--base", "B"]
    assert len(sr_cli._items(build_parser().parse_args([*base, "--dataset", "math500", str(path)]))) == 100
    assert len(sr_cli._items(build_parser().parse_args([*base, "--dataset", "math500", str(path), "--n", "7"]))) == 7
    assert len(sr_cli._items(build_parser().parse_args(base))) == 20
    for bad in ("0", "-3"):
        assert main([*base, "--n", bad]) == 2
        assert capsys.readouterr().err == f"tenfold: error: config field 'n' = {bad}: must be in [1, inf]\n"


# -- solve --problem, one load per model, the help and error texts --------------------------------
def test_solve_takes_the_problem_positionally_or_with_the_option(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    _fakes(monkeypatch, [S3], ["9"])
    assert main(["specreason", "solve", "--problem", "Start with 126.", "--small", "S", "--base", "B"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f" 1 [+] score 9 small | {S3}"
    assert main(["specreason", "solve", "Start with 126.", "--problem", "Start with 1.", "--small", "S",
                 "--base", "B"]) == 2
    assert capsys.readouterr().err == ("tenfold: error: config field 'problem' = ['Start with 126.', 'Start with 1.']"
                                       ": give the problem exactly once: as PROBLEM or as --problem TEXT\n")
    assert main(["specreason", "solve", "--small", "S", "--base", "B"]) == 2
    assert capsys.readouterr().err == ("tenfold: error: config field 'problem' = None: give the problem exactly "
                                       "once: as PROBLEM or as --problem TEXT\n")


def test_each_model_is_loaded_once_when_both_roles_name_it(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    import tenfold.llm
    from tenfold.systems.specreason import pair as pair_mod

    pair_loads: list[str] = []

    def fake_load_pair(name: str = "arith-v1") -> tuple[ScriptedBackend, ScriptedBackend]:
        pair_loads.append(name)
        return ScriptedBackend([S3], name="small"), ScriptedBackend(["9"], name="base")

    monkeypatch.setattr(pair_mod, "load_pair", fake_load_pair)
    assert main(["specreason", "solve", "Start with 126.", "--small", "tiny-small", "--base", "pair:base"]) == 0
    assert pair_loads == ["arith-v1"]

    smollm2: list[ScriptedBackend] = []

    def fake_transformers(name: str) -> ScriptedBackend:
        smollm2.append(ScriptedBackend([S3, "9"], name=name))  # the draft, then the judge: one model
        return smollm2[-1]

    monkeypatch.setattr(tenfold.llm, "TransformersBackend", fake_transformers)
    assert main(["specreason", "solve", "Start with 126.", "--small", "smollm2", "--base", "smollm2"]) == 0
    assert len(smollm2) == 1 and [c.kind for c in smollm2[0].calls] == ["chat", "next_token"]


def test_serve_lists_only_models_it_can_serve(capsys: pytest.CaptureFixture[str]) -> None:
    known = "smollm2, tiny-small, tiny-base, pair:small, pair:base"
    for model in ("nosuch", "http://127.0.0.1:9/v1"):
        assert main(["specreason", "serve", "--model", model]) == 2
        assert capsys.readouterr().err == f"tenfold: error: unknown model to serve {model!r}; known: {known}\n"


def test_eval_usage_names_one_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["specreason", "eval", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "[--dataset NAME [FILE]]" in out and "[NAME [FILE] ...]" not in out
    assert "one dataset: arith (held-out chains, the default), or one of aime, math500, gpqa" in " ".join(out.split())
